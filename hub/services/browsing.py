"""Cheap paged queries for front-ends that show large registries (the TUI's table).

``Hub.list`` builds full records (JSON columns parsed, every row); a table that
shows 60 rows of 100,000 needs one page of a few columns and a count. These
reuse ``hub.registry.adapters.list_query`` for the filter, so the TUI and
``hub list`` agree on what a filter matches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from sqlalchemy import and_, case, func, select

from hub.registry import adapters as q
from hub.registry.adapters import ListFilter
from hub.registry.schema import adapter_tags, adapters, base_models, lineage

_FLAG_ORDER = ("rslora", "dora", "embed", "mts", "bias", "fifo")


def _flag_rank():
    # rows sort by which flags they carry (as a bit pattern), portable to PostgreSQL booleans
    total = None
    for bit, flag in enumerate(_FLAG_ORDER):
        term = case((q.FLAG_COLUMNS[flag].is_(True), 1 << bit), else_=0)
        total = term if total is None else total + term
    return total


def _first_tag():
    return (select(func.min(adapter_tags.c.tag)).where(adapter_tags.c.adapter_id == adapters.c.id)
            .scalar_subquery())


# Every column the browser shows can be sorted on.
BROWSE_SORTS = {
    "name": lambda: (adapters.c.name,),
    "base": lambda: (func.coalesce(base_models.c.name, adapters.c.base_model),),
    "r": lambda: (adapters.c.r,),
    "alpha": lambda: (adapters.c.lora_alpha,),
    "targets": lambda: (adapters.c.target_modules,),
    "flags": lambda: (_flag_rank(),),
    "size": lambda: (adapters.c.size_bytes,),
    "tags": lambda: (_first_tag(),),
    "source": lambda: (adapters.c.source_kind, func.coalesce(adapters.c.source_repo, adapters.c.source_path)),
    "created": lambda: (adapters.c.created_at,),
}

_ROW_COLUMNS = (
    adapters.c.id, adapters.c.name, adapters.c.base_model, base_models.c.name.label("base_name"), adapters.c.r,
    adapters.c.lora_alpha, adapters.c.target_modules, adapters.c.size_bytes, adapters.c.source_kind,
    adapters.c.source_repo, adapters.c.source_revision, adapters.c.source_path,
    *(col.label(f"flag_{flag}") for flag, col in q.FLAG_COLUMNS.items()),
)


@dataclass(frozen=True)
class AdapterRow:
    """One line of the adapter browser: what the table shows, nothing parsed from JSON."""

    name: str
    base: str
    r: int
    alpha: float
    targets: tuple[str, ...]
    flags: tuple[str, ...]
    size_bytes: int
    tags: tuple[str, ...]
    source: str


def _source_label(m) -> str:
    if m["source_repo"]:
        rev = m["source_revision"]
        return f"hf:{m['source_repo']}" + (f"@{rev}" if rev and rev != "main" else "")
    if m["source_kind"] == "local" and m["source_path"]:
        return os.path.basename(m["source_path"].rstrip("/"))
    return m["source_kind"] or "-"


class BrowsingMixin:
    def _browse_query(self, flt: ListFilter):
        # list_query only knows a few sort keys; filter with it, then order our way
        base = replace(flt, sort="name", desc=False, limit=None, offset=0)
        return q.list_query(base).order_by(None)

    def list_rows(self, flt: ListFilter | None = None) -> list[AdapterRow]:
        """One page of browser rows: ``flt`` filters; ``sort`` may be any BROWSE_SORTS key;
        ``limit``/``offset`` page."""
        flt = flt or ListFilter()
        if flt.sort not in BROWSE_SORTS:
            from hub.errors import UsageError

            raise UsageError(f"cannot sort by {flt.sort!r}", None, f"use one of {', '.join(BROWSE_SORTS)}")
        keys = BROWSE_SORTS[flt.sort]()
        order = [k.desc() if flt.desc else k.asc() for k in keys]
        stmt = self._browse_query(flt).with_only_columns(*_ROW_COLUMNS, maintain_column_froms=False)
        stmt = stmt.order_by(*order, adapters.c.name.asc())
        if flt.limit is not None:
            stmt = stmt.limit(flt.limit)
        if flt.offset:
            stmt = stmt.offset(flt.offset)
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
                size_bytes=m["size_bytes"], tags=tuple(sorted(tags.get(m["id"], ()))), source=_source_label(m)))
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
        order = [k.desc() if flt.desc else k.asc() for k in keys] + [adapters.c.name.asc()]
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
