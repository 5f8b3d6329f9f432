"""Queries of the adapter browser (the TUI's table): pages, counts and positions under any
browser sort, Source columns, and the compact columns the in-memory browse index loads
(hub.services.browse_index). Filters are list_query's, so the browser and `hub list` agree."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import case, func, select

from hub.registry import adapters as q
from hub.registry.filters import ListFilter
from hub.registry.schema import adapter_tags, adapter_targets, adapters, base_models

FLAG_ORDER = tuple(q.FLAG_COLUMNS)   # rslora, dora, embed, mts, bias, fifo


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
    "params": lambda: (adapters.c.param_count,),
}

SOURCE_COLUMNS = (adapters.c.id, adapters.c.source_kind, adapters.c.source_repo, adapters.c.source_revision,
                   adapters.c.source_path)
ROW_COLUMNS = (
    adapters.c.id, adapters.c.name, adapters.c.base_model, base_models.c.name.label("base_name"), adapters.c.r,
    adapters.c.lora_alpha, adapters.c.target_modules, adapters.c.size_bytes, adapters.c.source_kind,
    adapters.c.source_repo, adapters.c.source_revision, adapters.c.source_path,
    *(col.label(f"flag_{flag}") for flag, col in q.FLAG_COLUMNS.items()),
)
INDEX_COLUMNS = (
    adapters.c.id, adapters.c.name, adapters.c.base_model, adapters.c.base_id, adapters.c.r, adapters.c.lora_alpha,
    adapters.c.size_bytes, adapters.c.created_at, adapters.c.description,
    *(q.FLAG_COLUMNS[flag].label(f"flag_{flag}") for flag in FLAG_ORDER), adapters.c.param_count,
)


def _filtered(flt: ListFilter):
    # list_query only knows a few sort keys; filter with it, then order our way
    return q.list_query(replace(flt, sort="name", desc=False, limit=None, offset=0)).order_by(None)


def _order(flt: ListFilter) -> list:
    keys = BROWSE_SORTS[flt.sort]() if flt.sort in BROWSE_SORTS else (adapters.c.name,)
    return [k.desc().nulls_last() if flt.desc else k.asc().nulls_first() for k in keys] + [adapters.c.name.asc()]


def page(conn, flt: ListFilter, sources: bool = True) -> list:
    """One page of ROW_COLUMNS (without the source ones unless ``sources``) in ``flt``'s browser sort."""
    columns = ROW_COLUMNS if sources else [c for c in ROW_COLUMNS if not c.name.startswith("source_")]
    stmt = _filtered(flt).with_only_columns(*columns, maintain_column_froms=False).order_by(*_order(flt))
    if flt.limit is not None:
        stmt = stmt.limit(flt.limit)
    if flt.offset:
        stmt = stmt.offset(flt.offset)
    return conn.execute(stmt).all()


def count(conn, flt: ListFilter) -> int:
    """How many adapters ``flt`` matches (limit/offset ignored)."""
    if flt == replace(ListFilter(), sort=flt.sort, desc=flt.desc, limit=flt.limit, offset=flt.offset):
        return q.count(conn)
    stmt = _filtered(flt).with_only_columns(func.count(adapters.c.id), maintain_column_froms=False)
    return conn.execute(stmt).scalar_one()


def position(conn, name: str, flt: ListFilter) -> int | None:
    """1-based place of adapter ``name`` in ``flt``'s browser order, None if filtered out."""
    numbered = _filtered(flt).with_only_columns(
        adapters.c.name.label("n"), func.row_number().over(order_by=_order(flt)).label("pos"),
        maintain_column_froms=False).subquery()
    return conn.execute(select(numbered.c.pos).where(numbered.c.n == name)).scalar()


def source_rows(conn, names=None, ids=None) -> list:
    """SOURCE_COLUMNS and the name of the adapters ``names`` (or ``ids``)."""
    column, wanted = (adapters.c.name, list(names)) if names is not None else (adapters.c.id, list(ids))
    out = []
    for start in range(0, len(wanted), 900):   # stay under SQLite's bound-parameter limit
        out += conn.execute(select(adapters.c.name, *SOURCE_COLUMNS)
                            .where(column.in_(wanted[start:start + 900]))).all()
    return out


def _grouped(conn, table, column, ids=None) -> dict[int, tuple[str, ...]]:
    """{adapter id: sorted values} from a (adapter_id, value) table, one row per adapter."""
    stmt = select(table.c.adapter_id, func.aggregate_strings(column, "\x1f")).group_by(table.c.adapter_id)
    out: dict[int, tuple[str, ...]] = {}
    chunks = [None] if ids is None else [ids[i:i + 900] for i in range(0, len(ids), 900)]
    for chunk in chunks:
        part = stmt if chunk is None else stmt.where(table.c.adapter_id.in_(chunk))
        for aid, joined in conn.execute(part).all():
            out[aid] = tuple(sorted(joined.split("\x1f")))
    return out


def index_rows(conn, names=None) -> tuple[list, dict, dict, dict]:
    """What the browse index holds, of every adapter's latest version (or of ``names``):
    (INDEX_COLUMNS rows, {base id: name}, {id: targets}, {id: tags})."""
    stmt = select(*INDEX_COLUMNS).where(adapters.c.latest.is_(True))  # one entry per name: its latest version
    if names is not None:
        stmt = stmt.where(adapters.c.name.in_(list(names)))
    rows = conn.execute(stmt).all()
    bases = dict(conn.execute(select(base_models.c.id, base_models.c.name)).all())
    ids = None if names is None else [r[0] for r in rows]
    return (rows, bases, _grouped(conn, adapter_targets, adapter_targets.c.target, ids),
            _grouped(conn, adapter_tags, adapter_tags.c.tag, ids))
