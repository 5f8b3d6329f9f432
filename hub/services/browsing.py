"""What the TUI's table asks (hub.browsing): cheap pages, counts and positions over large
registries, always current, and the in-memory browse index for typing-speed filters.

``Hub.list`` builds full records (JSON columns parsed, every row); a table that shows 60
rows of 100,000 needs one page of a few columns and a count. The queries are
hub.registry.browse's; the index is hub.listing.index's, loaded from them."""

from __future__ import annotations

from hub.errors import UsageError
from hub.listing.filters import ListFilter
from hub.listing.index import BrowseIndex
from hub.listing.rows import BROWSE_SORTS, AdapterRow
from hub.registry import adapters as q
from hub.registry import browse


class BrowsingService:
    """Needs the registry only."""

    def __init__(self, ctx):
        self.db = ctx.db

    # -- SQL answers, always current ------------------------------------------------------

    def list_rows(self, flt: ListFilter | None = None, sources: bool = True) -> list[AdapterRow]:
        """One page of browser rows: ``flt`` filters; ``sort`` may be any BROWSE_SORTS key;
        ``limit``/``offset`` page. With ``sources=False`` the Source labels are PENDING_SOURCE
        (reading them walks each row's JSON; see source_labels)."""
        flt = flt or ListFilter()
        if flt.sort not in BROWSE_SORTS:
            raise UsageError(f"cannot sort by {flt.sort!r}", None, f"use one of {', '.join(BROWSE_SORTS)}")
        with self.db.read() as conn:
            return browse.rows(conn, flt, sources)

    def source_labels(self, names) -> dict[str, str]:
        """{name: Source column label} for ``names``."""
        with self.db.read() as conn:
            return browse.source_labels(conn, names=names)

    def count_matching(self, flt: ListFilter | None = None) -> int:
        """How many adapters ``flt`` matches (limit/offset ignored)."""
        with self.db.read() as conn:
            return browse.count(conn, flt or ListFilter())

    def position_of(self, name: str, flt: ListFilter | None = None) -> int | None:
        """Index of adapter ``name`` in the filtered, sorted list (None if filtered out):
        lets a browser keep its cursor on a row after a re-sort, rename or refresh."""
        with self.db.read() as conn:
            return browse.position(conn, name, flt or ListFilter())

    def children_of(self, name: str) -> list[dict]:
        """Adapters recorded as made from ``name`` (the other half of the lineage tree)."""
        with self.db.read() as conn:
            row = q.get_row(conn, name)
            found = [] if row is None else q.children(conn, [row.id])
        return [{"name": n, "weight": w} for n, w in found]

    # -- the in-memory index (a snapshot the browser keeps in step) ------------------------

    def browse_index(self, on_chunk=None, first: int = 2_000, chunk: int = 25_000, between=None) -> BrowseIndex:
        """Load the browser's in-memory index: compact data, in name order, in chunks; after
        each chunk ``on_chunk(index)`` (the partial index answers what it can exactly).
        ``between()`` runs between steps of the load (the browser steps aside for typing)."""
        index = BrowseIndex([], self._source_labels, complete=False)
        after, size = None, first
        while True:
            if between is not None:
                between()
            with self.db.read() as conn:
                entries = browse.index_entries(conn, after=after, limit=size)
            index.extend(entries, between)
            if len(entries) < size:
                break
            if on_chunk is not None:
                on_chunk(index)
            after, size = entries[-1].name, chunk
        index.finish()
        return index

    def _source_labels(self, ids) -> dict[int, str]:
        with self.db.read() as conn:
            return browse.source_labels(conn, ids=ids)

    def refresh_browse_index(self, index: BrowseIndex, names) -> None:
        """Bring ``names`` (changed, added, renamed away or removed) up to date in ``index``."""
        names = [n for n in dict.fromkeys(names) if n]
        if not names:
            return
        with self.db.read() as conn:
            fresh = browse.index_entries(conn, names=names)
        kept = {e.name for e in fresh}
        index.replace([n for n in names if n not in kept], fresh)
