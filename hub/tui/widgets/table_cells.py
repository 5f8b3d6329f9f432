"""How the adapter table draws a row's cells: the text of each column, cut to its width and
made inert, with the filter's matches highlighted, in styles resolved once per paint."""

from __future__ import annotations

from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style

from hub.listing.rows import AdapterRow
from hub.tui.format import fit, flags_text, fmt_num, human_size, inert, middle, short_base, tags_text


def cell_text(row: AdapterRow, key: str, width: int) -> str:
    """The cell, exactly ``width`` cells wide, inert."""
    if key == "name":
        return middle(row.name, width)
    if key == "base":
        return fit(inert(short_base(row.base, width)), width)
    if key == "r":
        return fit(str(row.r), width, "right")
    if key == "alpha":
        return fit(fmt_num(row.alpha), width, "right")
    if key == "targets":
        return fit(inert(",".join(row.targets)), width)
    if key == "flags":
        return fit(flags_text(row.flags), width)
    if key == "size":
        return fit(human_size(row.size_bytes), width, "right")
    if key == "tags":
        return fit(tags_text(row.tags), width)
    raise KeyError(key)


def highlighted(text: str, needles, style: Style, hit: Style) -> list[Segment]:
    """``text`` as segments with every case-insensitive occurrence of ``needles`` in ``hit``."""
    if not needles:
        return [Segment(text, style)]
    low = text.lower()
    marks = [False] * len(text)
    for needle in needles:
        n = needle.lower()
        if not n:
            continue
        start = low.find(n)
        while start != -1:
            for i in range(start, min(start + len(n), len(text))):
                marks[i] = True
            start = low.find(n, start + 1)
    if not any(marks):
        return [Segment(text, style)]
    out, run_start = [], 0
    for i in range(1, len(text) + 1):
        if i == len(text) or marks[i] != marks[run_start]:
            out.append(Segment(text[run_start:i], hit if marks[run_start] else style))
            run_start = i
    return out


@dataclass(frozen=True)
class PaintStyles:
    """The table's styles, resolved once per paint (resolving the widget's own style walks
    its ancestors: per line, that was a third of the table's rendering time)."""
    base: Style
    cursor: Style
    header: Style
    header_sorted: Style
    empty: Style
    loading: Style
    mark: Style
    match: Style
