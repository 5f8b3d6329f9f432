"""Queries over the trash: move an adapter's rows into one snapshot, list, restore, forget.

An adapter's rows (adapters, files, targets, tags, fits, remotes, and the lineage rows that
name it as a child) are kept as JSON in trash.snapshot_json; its store files stay in the
store and are listed in trash_blobs, which every "is this blob used?" query counts.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.types import DateTime

from hub.registry import adapters as q
from hub.registry import versions
from hub.registry.schema import (
    adapter_base_fits, adapter_files, adapter_tags, adapter_targets, adapters, base_models, lineage, remotes, trash,
    trash_blobs,
)

_CHILDREN = (adapter_files, adapter_targets, adapter_tags, adapter_base_fits, remotes)


def _plain(table, row) -> dict:
    out = {}
    for col in table.c:
        value = row._mapping[col.name]
        out[col.name] = value.isoformat() if isinstance(value, datetime) else value
    return out


def _typed(table, values: dict) -> dict:
    out = {}
    for col in table.c:
        if col.name not in values:
            continue
        value = values[col.name]
        if value is not None and isinstance(col.type, DateTime):
            value = datetime.fromisoformat(value)
        out[col.name] = value
    return out


def snapshot(conn: Connection, adapter_id: int) -> dict | None:
    row = conn.execute(select(adapters).where(adapters.c.id == adapter_id)).first()
    if row is None:
        return None
    snap = {"adapter": _plain(adapters, row)}
    for table in _CHILDREN:
        snap[table.name] = [_plain(table, r) for r in conn.execute(
            select(table).where(table.c.adapter_id == adapter_id))]
    snap["lineage"] = [_plain(lineage, r) for r in conn.execute(
        select(lineage).where(and_(lineage.c.child_type == "adapter", lineage.c.child_id == adapter_id)))]
    return snap


def move_to_trash(conn: Connection, adapter_id: int, stamp: datetime) -> int | None:
    """Snapshot the adapter, record it in the trash with the store files it needs, delete its
    rows (aliases pointing at it are dropped, as `hub rm --force` asks). None if it is gone."""
    snap = snapshot(conn, adapter_id)
    if snap is None:
        return None
    a = snap["adapter"]
    trash_id = conn.execute(insert(trash).values(
        name=a["name"], sha256=a["sha256"], size_bytes=a["size_bytes"], trashed_at=stamp,
        snapshot_json=json.dumps(snap, sort_keys=True))).inserted_primary_key[0]
    if a["storage"] == "store":
        shas = sorted({f["sha256"] for f in snap["adapter_files"]})
        if shas:
            conn.execute(insert(trash_blobs), [{"trash_id": trash_id, "sha256": s} for s in shas])
    q.delete_adapter(conn, adapter_id)
    return trash_id


def entries(conn: Connection, ident=None) -> list:
    """Trash rows (newest first), all or those with id ``ident`` (int) or name ``ident`` (str)."""
    stmt = select(trash.c.id, trash.c.name, trash.c.sha256, trash.c.size_bytes, trash.c.trashed_at)
    if isinstance(ident, int):
        stmt = stmt.where(trash.c.id == ident)
    elif ident is not None:
        stmt = stmt.where(trash.c.name == ident)
    return conn.execute(stmt.order_by(trash.c.trashed_at.desc(), trash.c.id.desc())).all()


def expired(conn: Connection, before: datetime) -> list:
    return conn.execute(select(trash.c.id, trash.c.name, trash.c.trashed_at, trash.c.size_bytes)
                        .where(trash.c.trashed_at < before).order_by(trash.c.id)).all()


def restore(conn: Connection, trash_id: int, name: str) -> int:
    """Put the snapshot back as adapter ``name``; returns its new id. The entry is removed."""
    snap = json.loads(conn.execute(select(trash.c.snapshot_json).where(trash.c.id == trash_id)).scalar_one())
    values = _typed(adapters, snap["adapter"])
    old_name = values["name"]
    values.pop("id")
    values["name"] = name
    if name != old_name or conn.execute(select(adapters.c.id).where(and_(
            adapters.c.name == name, adapters.c.version == values["version"]))).first() is not None:
        values["version"] = versions.next_version(conn, name)
    base_id = values.get("base_id")
    if base_id is not None and conn.execute(select(base_models.c.id).where(base_models.c.id == base_id)).first() is None:
        values["base_id"] = None   # that base was removed meanwhile
    new_id = conn.execute(insert(adapters).values(**values)).inserted_primary_key[0]
    bases = set(conn.execute(select(base_models.c.id)).scalars())
    for table in _CHILDREN:
        rows = []
        for r in snap.get(table.name, []):
            r = _typed(table, r)
            r["adapter_id"] = new_id
            if table is remotes:
                r.pop("id", None)
            if table is adapter_base_fits and r["base_id"] not in bases:
                continue
            rows.append(r)
        if rows:
            conn.execute(insert(table), rows)
    rows = []
    for r in snap.get("lineage", []):
        r = _typed(lineage, r)
        r.pop("id", None)
        r["child_id"] = new_id
        rows.append(r)
    if rows:
        conn.execute(insert(lineage), rows)
    # children made from it point at it again
    conn.execute(update(lineage).where(and_(
        lineage.c.parent_type == "adapter", lineage.c.parent_id.is_(None), lineage.c.parent_name == old_name,
        lineage.c.parent_sha256 == values["sha256"])).values(parent_id=new_id))
    versions.mark_latest(conn, name)
    forget(conn, [trash_id])
    return new_id


def forget(conn: Connection, ids) -> None:
    ids = list(ids)
    for start in range(0, len(ids), 900):
        chunk = ids[start:start + 900]
        conn.execute(delete(trash_blobs).where(trash_blobs.c.trash_id.in_(chunk)))
        conn.execute(delete(trash).where(trash.c.id.in_(chunk)))


def blobs_of(conn: Connection, ids) -> set[str]:
    ids = list(ids)
    out: set[str] = set()
    for start in range(0, len(ids), 900):
        out.update(conn.execute(select(trash_blobs.c.sha256).where(
            trash_blobs.c.trash_id.in_(ids[start:start + 900]))).scalars())
    return out


def all_trashed_blobs(conn: Connection) -> set[str]:
    return set(conn.execute(select(trash_blobs.c.sha256)).scalars())
