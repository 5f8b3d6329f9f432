"""The registry side of `hub doctor`: the facts hub.doctor plans from, and the row repairs."""

from __future__ import annotations

from sqlalchemy import and_, delete, func, not_, or_, select

from hub import doctor as dr
from hub.registry.schema import (
    adapter_base_fits, adapter_files, adapter_tags, adapter_targets, adapters, lineage, merged_models, remotes,
)

_CHILD_TABLES = (adapter_files, adapter_targets, adapter_tags, adapter_base_fits, remotes)


def registry_facts(conn, retention_days: float) -> dr.RegistryFacts:
    """What hub.doctor plans from: files, orphan rows, integrity, merged models, the trash."""
    files: dict[int, list[dr.FileFact]] = {}
    for r in conn.execute(select(adapter_files).order_by(adapter_files.c.adapter_id, adapter_files.c.name)):
        files.setdefault(r.adapter_id, []).append(dr.FileFact(r.name, r.size, r.sha256))
    facts = tuple(
        dr.AdapterFact(r.id, r.name, r.sha256, r.storage, r.path, tuple(files.get(r.id, ())))
        for r in conn.execute(select(adapters.c.id, adapters.c.name, adapters.c.sha256, adapters.c.storage,
                                     adapters.c.path).order_by(adapters.c.name))
    )
    orphans = {}
    for table in _CHILD_TABLES:
        n = conn.execute(select(func.count()).select_from(table).where(
            not_(table.c.adapter_id.in_(select(adapters.c.id))))).scalar_one()
        if n:
            orphans[table.name] = n
    n = conn.execute(select(func.count()).select_from(lineage).where(_orphan_lineage())).scalar_one()
    if n:
        orphans["lineage"] = n
    models = tuple((r.name, r.path) for r in conn.execute(
        select(merged_models.c.name, merged_models.c.path).order_by(merged_models.c.name)))
    return dr.RegistryFacts(facts, orphans, tuple(_integrity(conn)), models, **_trash_facts(conn, retention_days))


def _trash_facts(conn, days: float) -> dict:
    from datetime import datetime, timedelta, timezone

    from hub.registry import trash as tq

    now = datetime.now(timezone.utc)
    expired = []
    for r in tq.expired(conn, now - timedelta(days=days)):
        at = r.trashed_at if r.trashed_at.tzinfo else r.trashed_at.replace(tzinfo=timezone.utc)
        expired.append((r.id, r.name, (now - at).total_seconds() / 86400, r.size_bytes))
    return {"trashed_blobs": frozenset(tq.all_trashed_blobs(conn)), "expired_trash": tuple(expired),
            "retention_days": days}


def _orphan_lineage():
    """Lineage rows whose child (an adapter or a merged model) no longer exists."""
    return or_(and_(lineage.c.child_type == "adapter", not_(lineage.c.child_id.in_(select(adapters.c.id)))),
               and_(lineage.c.child_type == "model", not_(lineage.c.child_id.in_(select(merged_models.c.id)))))


def _integrity(conn) -> list[str]:
    if conn.dialect.name != "sqlite":
        return []  # PostgreSQL checks its own pages; nothing cheap to ask
    out = [r[0] for r in conn.exec_driver_sql("PRAGMA quick_check").all() if r[0] != "ok"]
    out += [f"foreign key violation in {r[0]} (row {r[1]})" for r in conn.exec_driver_sql("PRAGMA foreign_key_check")]
    return out


def file_shas(conn, adapter_id: int) -> list[str] | None:
    """The store files of adapter ``adapter_id``; None if the adapter is gone."""
    if conn.execute(select(adapters.c.id).where(adapters.c.id == adapter_id)).first() is None:
        return None
    return list(conn.execute(select(adapter_files.c.sha256).where(adapter_files.c.adapter_id == adapter_id)).scalars())


def delete_orphan_rows(conn, table_name: str) -> None:
    if table_name == "lineage":
        conn.execute(delete(lineage).where(_orphan_lineage()))
        return
    table = next(t for t in _CHILD_TABLES if t.name == table_name)
    conn.execute(delete(table).where(not_(table.c.adapter_id.in_(select(adapters.c.id)))))
