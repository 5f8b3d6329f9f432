"""Queries of the adapter browser (the TUI's table): its pages, counts and positions for any
sort, the Source labels, and the compact data its in-memory index (hub.listing.index) loads.
The filter is list_query's (hub.registry.adapters), so the table and `hub list` agree on
what a filter matches. Functions take an open Connection; the service decides transactions."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import and_, case, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.util import ClauseAdapter

from hub.listing.filters import ListFilter
from hub.listing.index import Entry, search_text
from hub.listing.rows import BROWSE_SORTS, FLAG_ORDER, PENDING_SOURCE, AdapterRow, source_label
from hub.registry import adapters as q
from hub.registry.schema import adapter_tags, adapter_targets, adapters, base_models

_CHUNK = 900   # ids per IN (...): under SQLite's bound-parameter limit


def _flag_rank():
    # rows sort by which flags they carry (as a bit pattern), portable to PostgreSQL booleans
    total = None
    for bit, flag in enumerate(FLAG_ORDER):
        term = case((q.FLAG_COLUMNS[flag].is_(True), 1 << bit), else_=0)
        total = term if total is None else total + term
    return total


def _first_tag():
    return (select(func.min(adapter_tags.c.tag)).where(adapter_tags.c.adapter_id == adapters.c.id)
            .scalar_subquery())


# How each of hub.listing.rows.BROWSE_SORTS sorts in SQL.
_SORT_KEYS = {
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
    "params": lambda: (adapters.c.param_count,),
}
assert tuple(_SORT_KEYS) == BROWSE_SORTS

_SOURCE_COLUMNS = (adapters.c.source_kind, adapters.c.source_repo, adapters.c.source_revision,
                   adapters.c.source_path)
_ROW_COLUMNS = (
    adapters.c.id, adapters.c.name, adapters.c.base_model, base_models.c.name.label("base_name"), adapters.c.r,
    adapters.c.lora_alpha, adapters.c.target_modules, adapters.c.size_bytes, *_SOURCE_COLUMNS,
    *(col.label(f"flag_{flag}") for flag, col in q.FLAG_COLUMNS.items()),
)
_INDEX_COLUMNS = (
    adapters.c.id, adapters.c.name, adapters.c.base_model, adapters.c.base_id, adapters.c.r, adapters.c.lora_alpha,
    adapters.c.size_bytes, adapters.c.created_at, adapters.c.description,
    *(q.FLAG_COLUMNS[flag].label(f"flag_{flag}") for flag in FLAG_ORDER), adapters.c.param_count,
)


def _label(m) -> str:
    return source_label(m["source_kind"], m["source_repo"], m["source_revision"], m["source_path"])


def _filtered(flt: ListFilter):
    # list_query only knows a few sort keys; filter with it, then order our way
    return q.list_query(replace(flt, sort="name", desc=False, limit=None, offset=0)).order_by(None)


def _order(flt: ListFilter) -> list:
    keys = _SORT_KEYS[flt.sort]() if flt.sort in _SORT_KEYS else (adapters.c.name,)
    return [k.desc().nulls_last() if flt.desc else k.asc().nulls_first() for k in keys] + [adapters.c.name.asc()]


def rows(conn: Connection, flt: ListFilter, sources: bool = True) -> list[AdapterRow]:
    """One page of browser rows (``flt.sort`` one of BROWSE_SORTS). The Source columns sit
    after each row's JSON, so reading them walks it: with ``sources=False`` they are
    PENDING_SOURCE (see source_labels)."""
    order = _order(flt)
    columns = _ROW_COLUMNS if sources else [c for c in _ROW_COLUMNS if not c.name.startswith("source_")]
    if flt.limit is None and not flt.offset:
        stmt = _filtered(flt).with_only_columns(*columns, maintain_column_froms=False).order_by(*order)
    else:
        stmt = _page(flt, order, columns)
    found = conn.execute(stmt).all()
    tags = q.tags_for(conn, [r.id for r in found])
    out = []
    for row in found:
        m = row._mapping
        out.append(AdapterRow(
            name=m["name"], base=m["base_name"] or m["base_model"] or "", r=m["r"], alpha=m["lora_alpha"],
            targets=tuple(t for t in m["target_modules"].split(",") if t),
            flags=tuple(f for f in FLAG_ORDER if m[f"flag_{f}"]),
            size_bytes=m["size_bytes"], tags=tuple(sorted(tags.get(m["id"], ()))),
            source=_label(m) if sources else PENDING_SOURCE))
    return out


def _page(flt: ListFilter, order: list, columns):
    """A page: its ids first, sorted over the covering listing index (as list_query's
    pages), then only those rows are read; ordering whole rows read every matching
    row's JSON (0.3 s for the first page of 100,000)."""
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


def count(conn: Connection, flt: ListFilter) -> int:
    """How many adapters ``flt`` matches (limit/offset ignored)."""
    if flt == replace(ListFilter(), sort=flt.sort, desc=flt.desc, limit=flt.limit, offset=flt.offset):
        return q.count(conn)
    stmt = _filtered(flt).with_only_columns(func.count(adapters.c.id), maintain_column_froms=False)
    return conn.execute(stmt).scalar_one()


def position(conn: Connection, name: str, flt: ListFilter) -> int | None:
    """Index of adapter ``name`` in the filtered, sorted list (None if filtered out)."""
    numbered = _filtered(flt).with_only_columns(
        adapters.c.name.label("n"), func.row_number().over(order_by=_order(flt)).label("pos"),
        maintain_column_froms=False).subquery()
    pos = conn.execute(select(numbered.c.pos).where(numbered.c.n == name)).scalar()
    return None if pos is None else pos - 1


def source_labels(conn: Connection, names=None, ids=None) -> dict:
    """Source labels, {name: label} of ``names`` or {id: label} of ``ids``."""
    key = adapters.c.name if names is not None else adapters.c.id
    wanted = list(names if names is not None else ids)
    out = {}
    for start in range(0, len(wanted), _CHUNK):
        for r in conn.execute(select(key.label("key"), *_SOURCE_COLUMNS)
                              .where(key.in_(wanted[start:start + _CHUNK]))):
            out[r.key] = _label(r._mapping)
    return out


def _grouped(conn: Connection, table, column, ids=None) -> dict[int, tuple[str, ...]]:
    """{adapter id: sorted values} from a (adapter_id, value) table, one row per adapter."""
    stmt = select(table.c.adapter_id, func.aggregate_strings(column, "\x1f")).group_by(table.c.adapter_id)
    out: dict[int, tuple[str, ...]] = {}
    chunks = [None] if ids is None else [ids[i:i + _CHUNK] for i in range(0, len(ids), _CHUNK)]
    for chunk in chunks:
        part = stmt if chunk is None else stmt.where(table.c.adapter_id.in_(chunk))
        for aid, joined in conn.execute(part).all():
            out[aid] = tuple(sorted(joined.split("\x1f")))
    return out


def index_entries(conn: Connection, names=None, after: str | None = None, limit: int | None = None) -> list[Entry]:
    """Index entries of the adapters ``names`` (default: all), or of the ``limit`` next ones
    in name order ``after`` a name (loading in chunks). One entry per name: its latest version."""
    stmt = select(*_INDEX_COLUMNS).where(adapters.c.latest.is_(True))
    if names is not None:
        stmt = stmt.where(adapters.c.name.in_(list(names)))
    if limit is not None:
        if after is not None:
            stmt = stmt.where(adapters.c.name > after)
        stmt = stmt.order_by(adapters.c.name).limit(limit)
    found = conn.execute(stmt).all()
    bases = dict(conn.execute(select(base_models.c.id, base_models.c.name)).all())
    ids = None if names is None and limit is None else [r[0] for r in found]
    targets = _grouped(conn, adapter_targets, adapter_targets.c.target, ids)
    tags = _grouped(conn, adapter_tags, adapter_tags.c.tag, ids)
    flag_at = [(f, 9 + n) for n, f in enumerate(FLAG_ORDER)]
    none: tuple[str, ...] = ()
    out = []
    for r in found:
        # positions follow _INDEX_COLUMNS
        aid, name, base_model, base_id, rank, alpha, size, created, description = r[:9]
        its_targets = targets.get(aid, none)
        out.append(Entry(
            id=aid, name=name, base_model=base_model, base_name=bases.get(base_id), r=rank, alpha=alpha,
            targets=its_targets, flags=tuple(f for f, at in flag_at if r[at]), size_bytes=size,
            tags=tags.get(aid, none), created=created, params=r[9 + len(FLAG_ORDER)],
            search=search_text(name, description, its_targets)))
    return out
