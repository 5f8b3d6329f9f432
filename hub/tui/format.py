"""Short text for table cells and detail panes (no Textual here)."""

from __future__ import annotations

from rich.cells import cell_len, set_cell_size

from hub.cli._output import fmt_num, human_size

__all__ = ["fit", "fmt_num", "human_size", "short_base", "tags_text"]


def fit(text: str, width: int, align: str = "left") -> str:
    """Exactly ``width`` cells: clipped with an ellipsis, padded on the aligned side."""
    if width <= 0:
        return ""
    if cell_len(text) > width:
        return set_cell_size(text, width - 1) + "…"
    pad = " " * (width - cell_len(text))
    return pad + text if align == "right" else text + pad


def short_base(base: str) -> str:
    """Local paths (common in real adapter configs) shown by their last part; repo ids as they are."""
    if not base:
        return "-"
    if base.startswith(("/", "~", "./", "../")) or "\\" in base:
        parts = [p for p in base.replace("\\", "/").split("/") if p]
        return "…/" + parts[-1] if parts else base
    return base


def tags_text(tags) -> str:
    return ",".join(tags)
