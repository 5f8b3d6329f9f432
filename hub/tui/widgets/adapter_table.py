"""A virtual table over the registry: it holds a count and the pages it has shown.

A DataTable keeps every row as widgets' data; with 100,000 adapters that is seconds
of work before first paint. This Line API widget asks the service for a filtered
count and one page (LIMIT/OFFSET), draws only the visible lines, and fetches other
pages in worker threads as they scroll into view.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

from rich.segment import Segment
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from hub.listing.filters import ListFilter
from hub.listing.rows import AdapterRow
from hub.tui.format import fit
from hub.tui.jobs import run_in_thread
from hub.tui.widgets.table_cells import PaintStyles, cell_text, highlighted

PAGE_SIZE = 200
MAX_PAGES = 64          # pages kept in memory (12,800 rows); far ones are dropped
MARK_WIDTH = 2


class RowSource(Protocol):
    def list_rows(self, flt: ListFilter) -> list[AdapterRow]: ...
    def count_matching(self, flt: ListFilter) -> int: ...
    def position_of(self, name: str, flt: ListFilter) -> int | None: ...


@dataclass(frozen=True)
class Column:
    key: str            # also the sort key (hub.listing.rows.BROWSE_SORTS)
    label: str
    min_width: int
    weight: int         # share of spare width
    align: str = "left"
    drop_order: int = 0  # columns with a higher number are hidden first when narrow


COLUMNS = (
    Column("name", "Name", 16, 5),
    Column("base", "Base", 10, 2, drop_order=2),
    Column("r", "R", 3, 0, "right"),
    Column("alpha", "Alpha", 7, 0, "right", drop_order=3),     # room for "Alpha ▼"
    Column("targets", "Targets", 12, 3, drop_order=1),
    Column("flags", "Flags", 6, 1, drop_order=4),
    Column("size", "Size", 8, 0, "right", drop_order=3),
    Column("tags", "Tags", 6, 1, drop_order=5),
)
# sorts beyond the columns (`s` cycles through the visible columns, then these)
EXTRA_SORTS = (("created", "Date"), ("params", "Parameters"))
SORT_LABELS = {**{c.key: c.label for c in COLUMNS}, **dict(EXTRA_SORTS)}


def layout_columns(width: int) -> list[tuple[Column, int]]:
    """Visible columns and their widths for ``width`` cells (one-cell gaps)."""
    avail = width - MARK_WIDTH
    cols = list(COLUMNS)

    def need(cs):
        return sum(c.min_width for c in cs) + max(len(cs) - 1, 0)

    while len(cols) > 1 and need(cols) > avail:
        cols.remove(max(cols, key=lambda c: c.drop_order))
    spare = max(avail - need(cols), 0)
    weights = sum(c.weight for c in cols) or 1
    widths = [c.min_width + spare * c.weight // weights for c in cols]
    # rounding leftovers go to the widest flexible column
    leftover = avail - need(cols) - sum(w - c.min_width for c, w in zip(cols, widths))
    if leftover > 0:
        widths[0] += leftover
    return list(zip(cols, widths))


class AdapterTable(ScrollView, can_focus=True):
    """Rows of adapters; ``space`` marks, ``enter`` opens, clicking a header sorts."""

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "first", "First", show=False),
        Binding("end,G", "last", "Last", show=False),
        Binding("enter", "select", "Open", show=False),
    ]

    COMPONENT_CLASSES = {
        "adapter-table--header",
        "adapter-table--header-sorted",
        "adapter-table--cursor",
        "adapter-table--mark",
        "adapter-table--loading",
        "adapter-table--empty",
        "adapter-table--match",
    }

    DEFAULT_CSS = """
    AdapterTable {
        overflow-x: hidden;
        overflow-y: scroll;
        scrollbar-size-vertical: 1;
    }
    """

    class Highlighted(Message):
        """The cursor is on a (loaded) row."""

        def __init__(self, table: "AdapterTable", name: str | None) -> None:
            super().__init__()
            self.table = table
            self.name = name

    class Selected(Message):
        def __init__(self, table: "AdapterTable", name: str) -> None:
            super().__init__()
            self.table = table
            self.name = name

    class Changed(Message):
        """Count, sort or marks changed: the status line redraws."""

        def __init__(self, table: "AdapterTable") -> None:
            super().__init__()
            self.table = table

    def __init__(self, source: RowSource, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.source = source
        self.filter = ListFilter()
        self.total = 0
        self.cursor = 0
        self.loaded = False           # the first query has been applied
        self.partial = False          # total is a lower bound (the source is still indexing)
        self.marked: dict[str, None] = {}   # insertion-ordered set of names
        self._pages: dict[int, list[AdapterRow]] = {}
        self._pending: set[int] = set()
        self._generation = 0
        self._applied_generation = 0
        self._announced: str | None = None
        self._columns_cache: tuple[int, list[tuple[Column, int]]] | None = None
        self.highlights: dict[str, tuple[str, ...]] = {}   # column key -> substrings the filter matched
        self._paint_styles: PaintStyles | None = None

    # -- querying ------------------------------------------------------------------------

    def query_rows(self, flt: ListFilter | None = None, keep: str | None = None, reset: bool = False) -> None:
        """Run a new filter/sort (None: the current one again, e.g. after a change).

        ``keep`` puts the cursor on that adapter if the filter matches it; ``reset``
        puts it on the first row; otherwise the cursor keeps its index."""
        flt = replace(flt or self.filter, limit=None, offset=0)
        self.filter = flt
        self._generation += 1
        generation = self._generation
        wanted_cursor = 0 if reset else self.cursor
        source = self.source

        def fetch():
            # asked first: an index that completes meanwhile is re-asked (MainScreen._index_grew)
            partial = bool(getattr(source, "partial", None) and source.partial(flt))
            total = source.count_matching(flt)
            cursor = source.position_of(keep, flt) if keep else None
            if cursor is None:
                cursor = min(wanted_cursor, max(total - 1, 0))
            page = cursor // PAGE_SIZE
            rows = source.list_rows(replace(flt, limit=PAGE_SIZE, offset=page * PAGE_SIZE)) if total else []
            return generation, total, cursor, page, rows, partial

        run_in_thread(self, fetch, self._apply_query, group="table-query", exclusive=True,
                      description="count and first page")

    def _apply_query(self, result) -> None:
        generation, total, cursor, page, rows, partial = result
        if generation != self._generation:
            return
        self._applied_generation = generation
        self.total = total
        self.partial = partial
        self._pages = {page: rows}
        self._pending.clear()
        self.loaded = True
        if self.virtual_size.height != total + 1:
            self._set_virtual_height(total + 1)
        self._set_cursor(cursor, center=True)
        self.refresh()
        self.post_message(self.Changed(self))

    def _request_page(self, page: int) -> None:
        if page in self._pages or page in self._pending:
            return
        self._pending.add(page)
        generation = self._generation
        flt = replace(self.filter, limit=PAGE_SIZE, offset=page * PAGE_SIZE)
        source = self.source
        run_in_thread(self, lambda: (generation, page, source.list_rows(flt)), self._apply_page,
                      group="table-page", description=f"page {page}")

    def _apply_page(self, result) -> None:
        generation, page, rows = result
        if generation != self._generation:
            return
        self._pending.discard(page)
        self._pages[page] = rows
        if len(self._pages) > MAX_PAGES:
            here = self.cursor // PAGE_SIZE
            for far in sorted(self._pages, key=lambda p: -abs(p - here))[: len(self._pages) - MAX_PAGES]:
                del self._pages[far]
        self.refresh()
        self._announce()

    @property
    def settled(self) -> bool:
        """The latest query is applied and the cursor's page is loaded (tests and benchmarks wait on it)."""
        return self.loaded and self._applied_generation == self._generation and (
            self.total == 0 or self.row_at(self.cursor) is not None)

    def row_at(self, index: int) -> AdapterRow | None:
        """The row at ``index`` if its page is loaded (None while loading)."""
        if not 0 <= index < self.total:
            return None
        rows = self._pages.get(index // PAGE_SIZE)
        if rows is None:
            return None
        offset = index % PAGE_SIZE
        return rows[offset] if offset < len(rows) else None

    @property
    def current(self) -> AdapterRow | None:
        return self.row_at(self.cursor)

    @property
    def current_name(self) -> str | None:
        row = self.current
        return row.name if row else None

    # -- cursor, marks, sorting ----------------------------------------------------------

    @property
    def _rows_visible(self) -> int:
        return max(self.scrollable_content_region.height - 1, 1)

    def _set_cursor(self, index: int, center: bool = False) -> None:
        self.cursor = max(0, min(index, self.total - 1)) if self.total else 0
        top = round(self.scroll_y)
        height = self._rows_visible
        if center and not top <= self.cursor < top + height:
            self.scroll_to(y=max(self.cursor - height // 2, 0), animate=False, immediate=True)
        elif self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)
        if self.row_at(self.cursor) is None and self.total:
            self._request_page(self.cursor // PAGE_SIZE)
        self.refresh()
        self._announce()

    def _announce(self) -> None:
        name = self.current_name
        if name is not None and name != self._announced:
            self._announced = name
            self.post_message(self.Highlighted(self, name))
        elif not self.total and self._announced is not None:
            self._announced = None
            self.post_message(self.Highlighted(self, None))

    def action_cursor(self, delta: int) -> None:
        self._set_cursor(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self._set_cursor(self.cursor + direction * self._rows_visible)

    def action_first(self) -> None:
        self._set_cursor(0)

    def action_last(self) -> None:
        self._set_cursor(self.total - 1)

    def action_select(self) -> None:
        name = self.current_name
        if name:
            self.post_message(self.Selected(self, name))

    def toggle_mark(self, name: str | None = None) -> bool | None:
        """Mark or unmark ``name`` (default: the cursor's row); returns the new state."""
        name = name or self.current_name
        if name is None:
            return None
        if name in self.marked:
            del self.marked[name]
            state = False
        else:
            self.marked[name] = None
            state = True
        self.refresh()
        self.post_message(self.Changed(self))
        return state

    def forget(self, name: str, new_name: str | None = None) -> None:
        """Keep marks right after a rename (``new_name``) or a removal (no ``new_name``)."""
        if name not in self.marked:
            return
        renamed = {}
        for n in self.marked:
            if n != name:
                renamed[n] = None
            elif new_name:
                renamed[new_name] = None
        self.marked = renamed

    def sort_by(self, key: str, desc: bool | None = None) -> None:
        """Re-sort; the cursor goes to the top (the new first row is what a re-sort is for)."""
        if desc is None:
            desc = not self.filter.desc if self.filter.sort == key else False
        self.query_rows(replace(self.filter, sort=key, desc=desc), reset=True)
        self.post_message(self.Changed(self))

    def next_sort(self) -> None:
        keys = [c.key for c, _ in self._layout()] + [k for k, _ in EXTRA_SORTS]
        current = self.filter.sort
        key = keys[(keys.index(current) + 1) % len(keys)] if current in keys else keys[0]
        self.sort_by(key, desc=False)

    # -- drawing -------------------------------------------------------------------------

    def _layout(self) -> list[tuple[Column, int]]:
        width = self.scrollable_content_region.width
        if self._columns_cache is None or self._columns_cache[0] != width:
            self._columns_cache = (width, layout_columns(width))
        return self._columns_cache[1]

    def _set_virtual_height(self, height: int) -> None:
        # Only the scrollbar depends on the row count: setting virtual_size plainly would lay
        # out the whole screen on every keystroke (10-30 ms at 120x36). The table's region is
        # unchanged, so updating the scrollbar in place is what that layout would have done.
        size = Size(self.size.width, height)
        self.set_reactive(AdapterTable.virtual_size, size)
        self._scroll_update(size)

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, self.total + 1)
        self._columns_cache = None

    def render_lines(self, crop: Region) -> list[Strip]:
        self._paint_styles = None     # resolved again by this paint's first line
        return super().render_lines(crop)

    def notify_style_update(self) -> None:
        self._paint_styles = None
        super().notify_style_update()

    @property
    def paint_styles(self) -> PaintStyles:
        if self._paint_styles is None:
            base, part = self.rich_style, self.get_component_rich_style
            header = base + part("adapter-table--header")
            self._paint_styles = PaintStyles(
                base=base, cursor=base + part("adapter-table--cursor"), header=header,
                header_sorted=header + part("adapter-table--header-sorted"), empty=base + part("adapter-table--empty"),
                loading=part("adapter-table--loading"), mark=part("adapter-table--mark"),
                match=part("adapter-table--match"))
        return self._paint_styles

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        styles = self.paint_styles
        base = styles.base
        if y == 0:
            return self._header(width, styles)
        index = round(self.scroll_y) + y - 1
        if not self.loaded:
            return Strip.blank(width, base)
        if self.total == 0:
            if y == 1:
                text = "no adapters match the filter" if self.filter != ListFilter(
                    sort=self.filter.sort, desc=self.filter.desc) else "the registry is empty: hub add PATH"
                return Strip([Segment(fit("  " + text, width), styles.empty)], width)
            return Strip.blank(width, base)
        if index >= self.total:
            return Strip.blank(width, base)
        row = self.row_at(index)
        is_cursor = index == self.cursor
        style = styles.cursor if is_cursor else base
        if row is None:
            self.call_after_refresh(self._request_page, index // PAGE_SIZE)
            return Strip([Segment(fit("  …", width), style + styles.loading)], width)
        marked = row.name in self.marked
        mark_style = style + styles.mark if marked else style
        hit = style + styles.match
        segments = [Segment("● " if marked else "  ", mark_style)]
        for i, (col, w) in enumerate(self._layout()):
            if i:
                segments.append(Segment(" ", style))
            segments += highlighted(cell_text(row, col.key, w), self.highlights.get(col.key), style, hit)
        return Strip(segments).adjust_cell_length(width, style)

    def _header(self, width: int, styles: PaintStyles) -> Strip:
        header, sorted_style = styles.header, styles.header_sorted
        segments = [Segment(" " * MARK_WIDTH, header)]
        for i, (col, w) in enumerate(self._layout()):
            if i:
                segments.append(Segment(" ", header))
            label = col.label
            is_sorted = col.key == self.filter.sort
            if is_sorted:
                label += " ▼" if self.filter.desc else " ▲"
            segments.append(Segment(fit(label, w, col.align), sorted_style if is_sorted else header))
        return Strip(segments).adjust_cell_length(width, header)

    def column_at(self, x: int) -> Column | None:
        pos = MARK_WIDTH
        for col, w in self._layout():
            if pos <= x < pos + w + 1:
                return col
            pos += w + 1
        return None

    # -- mouse -----------------------------------------------------------------------------

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            col = self.column_at(offset.x)
            if col is not None:
                self.sort_by(col.key)
            return
        index = round(self.scroll_y) + offset.y - 1
        if 0 <= index < self.total:
            if index == self.cursor and event.chain == 2:
                self.action_select()
            self._set_cursor(index)
