"""Short text for table cells and detail panes (no Textual here).

Everything shown comes from adapters, configs, findings or the Hub, so it is untrusted:
``inert`` makes it plain text (no control codes reach the terminal); widgets draw it as
Segments or Content, never as markup.
"""

from __future__ import annotations

import re

from rich.cells import cell_len, set_cell_size

from hub.display import fmt_num, human_size
from hub.flags import FLAG_LABELS

__all__ = ["FLAG_LABELS", "fit", "flags_text", "fmt_num", "human_size", "inert", "middle", "short_base",
           "tags_text"]

# C0/C1 controls, DEL, and the bidi overrides/isolates that reorder what follows them
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")



def inert(text) -> str:
    """``text`` with every control or reordering character shown as an escape (``\\x1b``)."""
    text = "" if text is None else str(text)
    if not _UNSAFE.search(text):
        return text
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def fit(text: str, width: int, align: str = "left") -> str:
    """Exactly ``width`` cells: clipped with an ellipsis, padded on the aligned side."""
    if width <= 0:
        return ""
    if cell_len(text) > width:
        return set_cell_size(text, width - 1) + "…"
    pad = " " * (width - cell_len(text))
    return pad + text if align == "right" else text + pad


def middle(text: str, width: int) -> str:
    """Exactly ``width`` cells, long text cut in the middle (both ends of a name tell most)."""
    if width <= 0:
        return ""
    if cell_len(text) <= width:
        return text + " " * (width - cell_len(text))
    if width < 5:
        return fit(text, width)
    head = (width - 1) // 2
    tail = width - 1 - head
    return set_cell_size(text, head) + "…" + _last_cells(text, tail)


def _last_cells(text: str, width: int) -> str:
    out = ""
    for ch in reversed(text):
        if cell_len(ch + out) > width:
            break
        out = ch + out
    return out.rjust(width)


def short_base(base: str, width: int | None = None) -> str:
    """Local paths (common in real adapter configs) by their last part; repo ids as they are,
    or without the organisation when they do not fit ``width``."""
    if not base:
        return "-"
    if base.startswith(("/", "~", "./", "../")) or "\\" in base:
        parts = [p for p in base.replace("\\", "/").split("/") if p]
        return "…/" + parts[-1] if parts else base
    if width is not None and cell_len(base) > width and "/" in base:
        return base.split("/", 1)[1]
    return base


def flags_text(flags) -> str:
    return " ".join(FLAG_LABELS.get(f, f) for f in flags)


def tags_text(tags) -> str:
    return ",".join(tags)
