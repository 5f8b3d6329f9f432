"""The trash: `hub rm` moves adapters here; `hub trash list|restore|empty`; `hub doctor`
empties entries older than the retention period (HUB_TRASH_DAYS, default 30 days).

Removal keeps the store files; emptying forgets the entries in one write transaction,
then deletes the files no adapter or other entry uses in a second one under the store
lock (rows first, files after: a crash in between leaves orphan blobs for doctor, never a
row without its files)."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from hub.errors import AlreadyExists, NotFound, UsageError
from hub.names import check_name
from hub.records import AdapterRecord
from hub.registry import adapters as q
from hub.registry import trash as tq

DEFAULT_RETENTION_DAYS = 30.0


def retention_days() -> float:
    raw = os.environ.get("HUB_TRASH_DAYS", "")
    try:
        days = float(raw) if raw else DEFAULT_RETENTION_DAYS
    except ValueError:
        raise UsageError(f"HUB_TRASH_DAYS={raw!r} is not a number", None, "set it to a number of days, e.g. 30") \
            from None
    if not days >= 0 or days == float("inf"):
        raise UsageError(f"HUB_TRASH_DAYS={raw!r} must be a finite number of days, 0 or more", None,
                         "set it to e.g. 30")
    return days


def _aware(stamp: datetime) -> datetime:
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)   # SQLite drops the zone


@dataclass(frozen=True)
class TrashEntry:
    id: int
    name: str
    sha256: str
    size_bytes: int
    trashed_at: datetime
    expires_at: datetime

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "sha256": self.sha256, "size_bytes": self.size_bytes,
                "trashed_at": self.trashed_at.isoformat(), "expires_at": self.expires_at.isoformat()}


@dataclass(frozen=True)
class TrashEmptied:
    entries: list[TrashEntry]
    blobs_deleted: int
    bytes_freed: int

    def to_dict(self) -> dict:
        return {"emptied": [e.to_dict() for e in self.entries], "blobs_deleted": self.blobs_deleted,
                "bytes_freed": self.bytes_freed}


@dataclass(frozen=True)
class RemovalPlan:
    name: str                 # NAME (every version) or NAME@N (one)
    blobs: list[str]          # store files that only these versions use (freed when the trash is emptied)
    bytes_freed: int
    view: str | None
    ids: tuple[int, ...] = ()
    versions: tuple[int, ...] = ()
    views: tuple[str, ...] = ()
    trash_ids: tuple[int, ...] = ()   # their trash entries, once removed

    def to_dict(self) -> dict:
        return {"name": self.name, "blobs": self.blobs, "bytes_freed": self.bytes_freed,
                "versions": list(self.versions), "trash_ids": list(self.trash_ids)}


class TrashService:
    """`hub rm` (into the trash) and `hub trash ...`. Needs the adapters and versions services."""

    def __init__(self, ctx, adapters, versions):
        self.db, self.store, self.lock = ctx.db, ctx.store, ctx.lock
        self.adapters, self.versions = adapters, versions

    def remove_plan(self, name: str, force: bool = False) -> RemovalPlan:
        """``NAME``: every version; ``NAME@N`` or ``NAME@ALIAS``: that version, refused while an
        alias points at it unless ``force`` (which drops the alias)."""
        label, records = self.versions.removal_targets(name, force)
        files = [f for rec in records if rec.storage == "store" for f in rec.files]
        blobs = list(dict.fromkeys(f["sha256"] for f in files))
        with self.db.read() as conn:
            others = q.referenced_blobs(conn, blobs, except_adapter=[r.id for r in records])
        only_here = [s for s in blobs if s not in others]
        freed = sum({f["sha256"]: f["size"] for f in files if f["sha256"] in only_here}.values())
        return RemovalPlan(label, only_here, freed, records[0].sha256, tuple(r.id for r in records),
                           tuple(r.version for r in records), tuple(r.sha256 for r in records))

    def remove(self, name: str, dry_run: bool = False, force: bool = False) -> RemovalPlan:
        """Move ``name`` (every version, or NAME@N) to the trash (hub.services.trash): the rows
        leave the registry in one transaction, one trash entry per version; the store files
        stay until the trash is emptied."""
        plan = self.remove_plan(name, force=force)
        if dry_run:
            return plan
        stamp = q.now()
        with self.db.write() as conn:
            trash_ids = []
            for adapter_id in plan.ids:
                trash_id = tq.move_to_trash(conn, adapter_id, stamp)
                if trash_id is None:
                    raise NotFound(f"no adapter named {name!r}", None, "see `hub list`")
                trash_ids.append(trash_id)
        for view in plan.views or (plan.view,):
            self.store.drop_view(view)
        return replace(plan, trash_ids=tuple(trash_ids))

    def trash_retention_days(self) -> float:
        return retention_days()

    def _entry(self, row, days: float) -> TrashEntry:
        at = _aware(row.trashed_at)
        return TrashEntry(row.id, row.name, row.sha256, row.size_bytes, at, at + timedelta(days=days))

    def trash_list(self) -> list[TrashEntry]:
        days = retention_days()
        with self.db.read() as conn:
            return [self._entry(r, days) for r in tq.entries(conn)]

    def _trash_rows(self, conn, ident) -> list:
        if isinstance(ident, str) and ident.isdigit():
            ident = int(ident)
        rows = tq.entries(conn, ident)
        if not rows:
            raise NotFound(f"nothing in the trash called {ident!r}", None, "see `hub trash list`")
        return rows

    def trash_restore(self, ident, name: str | None = None) -> AdapterRecord:
        """Bring back the newest trash entry named ``ident`` (or with id ``ident``), as ``name``."""
        with self.db.write() as conn:
            row = self._trash_rows(conn, ident)[0]
            new_name = check_name(name) if name else row.name
            if name and q.name_taken(conn, new_name):
                raise AlreadyExists(f"the name {new_name!r} is taken", None, "choose another with --as")
            existing = q.get_by_sha(conn, row.sha256)
            if existing is not None:
                raise AlreadyExists(f"the same content is registered again as {existing.name!r}", None,
                                    "keep that one, or `hub rm` it before restoring")
            new_id = tq.restore(conn, row.id, new_name)
            version = q.version_of(conn, new_id)
        return self.adapters.get(f"{new_name}@{version}")

    def trash_empty(self, ident=None, older_than_days: float | None = None, dry_run: bool = False) -> TrashEmptied:
        """Forget trash entries (all, ``ident``'s, or those older than ``older_than_days``) and
        delete the store files nothing else uses."""
        days = retention_days()
        with self.db.write() as conn:
            if ident is not None:
                rows = self._trash_rows(conn, ident)
            elif older_than_days is not None:
                rows = tq.expired(conn, datetime.now(timezone.utc) - timedelta(days=older_than_days))
            else:
                rows = tq.entries(conn)
            entries = [self._entry(r, days) for r in rows]
            shas = tq.blobs_of(conn, [e.id for e in entries])
            if dry_run:
                return TrashEmptied(entries, len(shas), sum(self._blob_size(s) for s in shas))
            tq.forget(conn, [e.id for e in entries])
        deleted = freed = 0
        with self.db.write() as conn:
            self.lock(conn)
            still = q.referenced_blobs(conn, shas)
            for sha in sorted(shas - still):
                freed += self._blob_size(sha)
                self.store.delete(sha)
                deleted += 1
        return TrashEmptied(entries, deleted, freed)

    def _blob_size(self, sha: str) -> int:
        try:
            return self.store.blob_path(sha).stat().st_size
        except OSError:
            return 0

    def dependents_of(self, names) -> dict[str, list[tuple[str, str]]]:
        """{name: [(kind, child name)]}: registered adapters combined from it and merged models made with it."""
        out: dict[str, list[tuple[str, str]]] = {}
        ids_of = {name: self.remove_plan(name, force=True).ids for name in names}   # every version it names
        with self.db.read() as conn:
            for name in names:
                found = [(kind, row.name) for kind in ("adapter", "model")
                         for row in q.children(conn, ids_of[name], kind)]
                out[name] = list(dict.fromkeys(found))
        return out
