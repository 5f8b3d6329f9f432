"""Cheap paged queries for front-ends that show large registries (the TUI's table).

``Hub.list`` builds full records (JSON columns parsed, every row); a table that
shows 60 rows of 100,000 needs one page of a few columns and a count. These
reuse ``hub.registry.adapters.list_query`` for the filter, so the TUI and
``hub list`` agree on what a filter matches.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import and_, func, select

from hub.registry import adapters as q
from hub.registry.adapters import ListFilter
from hub.registry.schema import adapters, base_models, lineage
from hub.services.browse_index import BrowseIndex, _BrowseIndexMethods  # noqa: F401 - BrowseIndex re-exported
from hub.services.browse_rows import (  # noqa: F401 - re-exported for the TUI
    _FLAG_ORDER, _ROW_COLUMNS, _SOURCE_COLUMNS, BROWSE_SORTS, PENDING_SOURCE, AdapterRow, _source_label,
)

class _PagedQueries:
    """SQL answers, always current (the index below is a snapshot kept in step by the browser)."""

    def _browse_query(self, flt: ListFilter):
        # list_query only knows a few sort keys; filter with it, then order our way
        base = replace(flt, sort="name", desc=False, limit=None, offset=0)
        return q.list_query(base).order_by(None)

    def list_rows(self, flt: ListFilter | None = None, sources: bool = True) -> list[AdapterRow]:
        """One page of browser rows: ``flt`` filters; ``sort`` may be any BROWSE_SORTS key;
        ``limit``/``offset`` page. The Source columns sit after each row's JSON, so reading
        them walks it: with ``sources=False`` they are PENDING_SOURCE (see source_labels)."""
        flt = flt or ListFilter()
        if flt.sort not in BROWSE_SORTS:
            from hub.errors import UsageError

            raise UsageError(f"cannot sort by {flt.sort!r}", None, f"use one of {', '.join(BROWSE_SORTS)}")
        keys = BROWSE_SORTS[flt.sort]()
        order = [k.desc().nulls_last() if flt.desc else k.asc().nulls_first() for k in keys]
        order.append(adapters.c.name.asc())
        columns = _ROW_COLUMNS if sources else [c for c in _ROW_COLUMNS if not c.name.startswith("source_")]
        if flt.limit is None and not flt.offset:
            stmt = self._browse_query(flt).with_only_columns(*columns, maintain_column_froms=False).order_by(*order)
        else:
            stmt = self._browse_page(flt, order, columns)
        with self.db.read() as conn:
            rows = conn.execute(stmt).all()
            tags = q.tags_for(conn, [r.id for r in rows])
        out = []
        for row in rows:
            m = row._mapping
            out.append(AdapterRow(
                name=m["name"], base=m["base_name"] or m["base_model"] or "", r=m["r"], alpha=m["lora_alpha"],
                targets=tuple(t for t in m["target_modules"].split(",") if t),
                flags=tuple(f for f in _FLAG_ORDER if m[f"flag_{f}"]),
                size_bytes=m["size_bytes"], tags=tuple(sorted(tags.get(m["id"], ()))),
                source=_source_label(m) if sources else PENDING_SOURCE))
        return out

    def _browse_page(self, flt: ListFilter, order: list, columns):
        """A page: its ids first, sorted over the covering listing index (as list_query's
        pages), then only those rows are read; ordering whole rows read every matching
        row's JSON (0.3 s for the first page of 100,000)."""
        from sqlalchemy.sql.util import ClauseAdapter

        t = q.listing_alias()
        on_listing = ClauseAdapter(t).traverse
        base = replace(flt, sort="name", desc=False, limit=None, offset=0)
        page = select(t.c.id).select_from(t.outerjoin(base_models, t.c.base_id == base_models.c.id))
        conds = q.list_conditions(base, t)
        if conds:
            page = page.where(and_(*conds))
        page = page.order_by(*(on_listing(o) for o in order))
        if flt.limit is not None:
            page = page.limit(flt.limit)
        if flt.offset:
            page = page.offset(flt.offset)
        page = page.subquery("page")
        source = page.join(adapters, adapters.c.id == page.c.id).outerjoin(
            base_models, adapters.c.base_id == base_models.c.id)
        return select(*columns).select_from(source).order_by(*order)

    def source_labels(self, names) -> dict[str, str]:
        """{name: Source column label} for ``names``."""
        names = list(names)
        out = {}
        with self.db.read() as conn:
            for start in range(0, len(names), 900):
                rows = conn.execute(select(adapters.c.name, *_SOURCE_COLUMNS[1:])
                                    .where(adapters.c.name.in_(names[start:start + 900])))
                out.update((r.name, _source_label(r._mapping)) for r in rows)
        return out

    def count_matching(self, flt: ListFilter | None = None) -> int:
        """How many adapters ``flt`` matches (limit/offset ignored)."""
        flt = flt or ListFilter()
        with self.db.read() as conn:
            if flt == replace(ListFilter(), sort=flt.sort, desc=flt.desc, limit=flt.limit, offset=flt.offset):
                return q.count(conn)
            stmt = self._browse_query(flt).with_only_columns(func.count(adapters.c.id),
                                                             maintain_column_froms=False)
            return conn.execute(stmt).scalar_one()

    def position_of(self, name: str, flt: ListFilter | None = None) -> int | None:
        """Index of adapter ``name`` in the filtered, sorted list (None if filtered out):
        lets a browser keep its cursor on a row after a re-sort, rename or refresh."""
        flt = flt or ListFilter()
        inner = self._browse_query(flt)
        keys = BROWSE_SORTS[flt.sort]() if flt.sort in BROWSE_SORTS else (adapters.c.name,)
        order = [k.desc().nulls_last() if flt.desc else k.asc().nulls_first() for k in keys] + [adapters.c.name.asc()]
        numbered = inner.with_only_columns(
            adapters.c.name.label("n"), func.row_number().over(order_by=order).label("pos"),
            maintain_column_froms=False).subquery()
        with self.db.read() as conn:
            pos = conn.execute(select(numbered.c.pos).where(numbered.c.n == name)).scalar()
        return None if pos is None else pos - 1

    def children_of(self, name: str) -> list[dict]:
        """Adapters recorded as made from ``name`` (the other half of the lineage tree)."""
        with self.db.read() as conn:
            row = q.get_row(conn, name)
            if row is None:
                return []
            found = conn.execute(
                select(adapters.c.name, lineage.c.weight)
                .select_from(lineage.join(adapters, and_(lineage.c.child_type == "adapter",
                                                         lineage.c.child_id == adapters.c.id)))
                .where(and_(lineage.c.parent_type == "adapter", lineage.c.parent_id == row.id))
                .order_by(adapters.c.name)).all()
        return [{"name": n, "weight": w} for n, w in found]


class BrowsingService(_PagedQueries, _BrowseIndexMethods):
    """What the TUI's table asks: paged SQL answers and the in-memory browse index
    (hub.browsing). Needs the registry only."""

    def __init__(self, ctx):
        self.db = ctx.db
