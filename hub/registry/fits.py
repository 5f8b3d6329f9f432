"""Queries over adapter_base_fits: the stored verdict of each adapter against each base."""

from __future__ import annotations

from sqlalchemy import and_, delete, insert, select, update

from hub.registry.bases import names_and_paths
from hub.registry.schema import adapter_base_fits, adapters

_CHECK_COLUMNS = (adapters.c.id, adapters.c.name, adapters.c.config_json, adapters.c.modules_json,
                  adapters.c.saved_tensors_json, adapters.c.dtype, adapters.c.base_id)
_CHUNK = 500   # ids per IN (...): far below any bound-parameter limit


def adapters_to_check(conn, only: list[int] | None = None) -> list:
    """The columns a check reads, of every adapter (or the ids in ``only``), by name."""
    query = select(*_CHECK_COLUMNS).order_by(adapters.c.name)
    if only is None:
        return conn.execute(query).all()
    out = []
    for i in range(0, len(only), _CHUNK):
        out += conn.execute(query.where(adapters.c.id.in_(only[i:i + _CHUNK]))).all()
    return out


def fitting_bases(conn, adapter_ids: list[int]) -> dict[int, set[int]]:
    """{adapter id: ids of the bases it fits}, for adapters with at least one stored verdict."""
    known: dict[int, set[int]] = {}
    for adapter_id, base_id, ok in conn.execute(select(
            adapter_base_fits.c.adapter_id, adapter_base_fits.c.base_id, adapter_base_fits.c.compatible)
            .where(adapter_base_fits.c.adapter_id.in_(list(adapter_ids)))):
        known.setdefault(adapter_id, set())
        if ok:
            known[adapter_id].add(base_id)
    return known


def base_of(conn, adapter_id: int) -> int | None:
    return conn.execute(select(adapters.c.base_id).where(adapters.c.id == adapter_id)).scalar()


def store(conn, adapter_id: int, base_id: int, compatible: bool, findings_json: str, stamp,
          fresh: bool = False) -> None:
    if not fresh:
        conn.execute(delete(adapter_base_fits).where(and_(adapter_base_fits.c.adapter_id == adapter_id,
                                                           adapter_base_fits.c.base_id == base_id)))
    conn.execute(insert(adapter_base_fits).values(adapter_id=adapter_id, base_id=base_id, compatible=compatible,
                                                  findings_json=findings_json, checked_at=stamp))


def replace_for_base(conn, base_id: int, values: list[dict], only: list[int] | None = None) -> None:
    """Swap the verdicts against ``base_id`` (of every adapter, or the ids in ``only``) for ``values``."""
    if only is None:
        conn.execute(delete(adapter_base_fits).where(adapter_base_fits.c.base_id == base_id))
    else:
        for i in range(0, len(only), _CHUNK):
            conn.execute(delete(adapter_base_fits).where(and_(
                adapter_base_fits.c.base_id == base_id, adapter_base_fits.c.adapter_id.in_(only[i:i + _CHUNK]))))
    if values:
        conn.execute(insert(adapter_base_fits), values)


def resolve_base_ids(conn, declared: dict[int, str | None]) -> None:
    """Point adapters without a resolved base at one they fit: the one their config
    names (``declared``: {adapter id: declared base}) if it fits, else the first registered."""
    if not declared:
        return
    pending = [i for i, in conn.execute(select(adapters.c.id).where(and_(
        adapters.c.id.in_(list(declared)), adapters.c.base_id.is_(None))))]
    if not pending:
        return
    fitting: dict[int, list[int]] = {}
    for adapter_id, base_id in conn.execute(select(adapter_base_fits.c.adapter_id, adapter_base_fits.c.base_id)
                                            .where(and_(adapter_base_fits.c.adapter_id.in_(pending),
                                                        adapter_base_fits.c.compatible.is_(True)))
                                            .order_by(adapter_base_fits.c.base_id)):
        fitting.setdefault(adapter_id, []).append(base_id)
    if not fitting:
        return
    bases = names_and_paths(conn)
    for adapter_id, candidates in fitting.items():
        named = str(declared.get(adapter_id) or "").rstrip("/")
        chosen = next((b for b in candidates if named and named in bases[b]), candidates[0])
        conn.execute(update(adapters).where(adapters.c.id == adapter_id).values(base_id=chosen))
