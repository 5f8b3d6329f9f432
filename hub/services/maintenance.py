"""Registry health: `Hub.doctor()` reads the facts, hub.doctor plans, this executes.

Fixes that touch the store run inside a write transaction holding the store lock
(see ``store_lock``), and every candidate is re-checked there, so a doctor running
next to `hub add` / `hub rm` never deletes a blob that a row has just claimed.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import and_, delete, func, not_, or_, select, text

from hub import doctor as dr
from hub.registry import adapters as q
from hub.registry.schema import (
    adapter_base_fits, adapter_files, adapter_tags, adapter_targets, adapters, lineage, merged_models, remotes,
)

# arbitrary PostgreSQL advisory lock id serialising store changes (SQLite's BEGIN IMMEDIATE already does)
_STORE_LOCK = 7_305_113
_CHILD_TABLES = (adapter_files, adapter_targets, adapter_tags, adapter_base_fits, remotes)


def store_lock(conn) -> None:
    """Serialise, inside a write transaction, changes that add or delete store blobs.

    On SQLite the write transaction (BEGIN IMMEDIATE) is already exclusive. On
    PostgreSQL writers run side by side, so `rm` deleting a blob could race `add`
    reusing it; a transaction-scoped advisory lock closes that window.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _STORE_LOCK})


def registry_facts(conn) -> dr.RegistryFacts:
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
    return dr.RegistryFacts(facts, orphans, tuple(_integrity(conn)), models, **_trash_facts(conn))


def _trash_facts(conn) -> dict:
    from datetime import datetime, timedelta, timezone

    from hub.registry import trash as tq
    from hub.services.trash import retention_days

    days = retention_days()
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


class MaintenanceMixin:
    """`hub doctor`: find and repair leftovers of interrupted work."""

    def doctor(self, fix: bool = False, grace_s: float = dr.DEFAULT_GRACE_S, output_dirs=()) -> dr.DoctorReport:
        """Find leftovers (and with ``fix`` repair them); ``output_dirs`` are folders that
        received merge/export outputs, searched for hidden unfinished ones."""
        self._doctor_dirs = tuple(Path(d).expanduser() for d in output_dirs)
        report = self._doctor_plan(grace_s)
        if not fix:
            return report
        seen = {(p.kind, p.target) for p in report.problems}
        todo = report.problems
        for _ in range(3):  # removing a row can orphan its other blobs: the next pass takes them
            self._doctor_execute(report, [p for p in todo if p.fix], grace_s)
            again = self._doctor_plan(grace_s)
            report.after_fix = again.problems
            todo = [p for p in again.problems if p.fix and (p.kind, p.target) not in seen]
            if not todo:
                break
            report.problems.extend(todo)
            seen.update((p.kind, p.target) for p in todo)
        return report

    def _doctor_plan(self, grace_s: float) -> dr.DoctorReport:
        with self.db.read() as conn:
            return dr.plan(self.home, registry_facts(conn), grace_s,
                           output_dirs=getattr(self, "_doctor_dirs", ()))

    def _doctor_execute(self, report: dr.DoctorReport, todo: list[dr.Problem], grace_s: float) -> None:
        rows = [p for p in todo if p.kind in ("missing_file", "orphan_rows", "expired_trash")]
        files = [p for p in todo if p not in rows]
        if rows:
            with self.db.write() as conn:
                store_lock(conn)
                for p in rows:
                    if p.kind == "orphan_rows":
                        _delete_orphan_rows(conn, p.target)
                        report.fixed.append(p)
                    elif p.kind == "expired_trash":
                        from hub.registry import trash as tq

                        tq.forget(conn, [p.adapter_id])   # its blobs are orphans for the next pass
                        report.fixed.append(p)
                    elif self._still_missing(conn, p):
                        q.delete_adapter(conn, p.adapter_id)
                        report.fixed.append(p)
        if not files:
            return
        from hub import paths
        from hub.registry import binding

        # deleting store files: only while this store still records this registry's id
        binding.check(self.db, paths.store_dir(self.home))
        with self.db.write() as conn:
            store_lock(conn)
            referenced = set(q.all_referenced_blobs(conn))
            for p in files:
                path = Path(p.target)
                if p.kind == "orphan_blob" and path.name in referenced:
                    continue  # claimed by a row since the plan was made
                try:
                    dr.remove_path(path)
                except OSError as exc:
                    report.failed.append((p, f"{exc.strerror} ({exc.filename})"))
                    continue
                report.fixed.append(p)

    def _still_missing(self, conn, problem: dr.Problem) -> bool:
        row = conn.execute(select(adapters.c.id).where(adapters.c.id == problem.adapter_id)).first()
        if row is None:
            return False
        shas = conn.execute(select(adapter_files.c.sha256).where(
            adapter_files.c.adapter_id == problem.adapter_id)).scalars()
        return any(not self.store.has(s) for s in shas)


def _delete_orphan_rows(conn, table_name: str) -> None:
    if table_name == "lineage":
        conn.execute(delete(lineage).where(_orphan_lineage()))
        return
    table = next(t for t in _CHILD_TABLES if t.name == table_name)
    conn.execute(delete(table).where(not_(table.c.adapter_id.in_(select(adapters.c.id)))))
