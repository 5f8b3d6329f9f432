"""Registry health: `Hub.doctor()` reads the facts, hub.doctor plans, this executes.

Fixes that touch the store run inside a write transaction holding the store lock
(hub.registry.locks), and every candidate is re-checked there, so a doctor running
next to `hub add` / `hub rm` never deletes a blob that a row has just claimed.
"""

from __future__ import annotations

from pathlib import Path

from hub import doctor as dr
from hub.registry import adapters as q
from hub.registry import health


class MaintenanceService:
    """`hub doctor`: find and repair leftovers of interrupted work. Needs the context only."""

    def __init__(self, ctx):
        self.home, self.db, self.store, self.lock = ctx.home, ctx.db, ctx.store, ctx.lock

    def doctor(self, fix: bool = False, grace_s: float = dr.DEFAULT_GRACE_S, output_dirs=()) -> dr.DoctorReport:
        """Find leftovers (and with ``fix`` repair them); ``output_dirs`` are folders that
        received merge/export outputs, searched for hidden unfinished ones."""
        output_dirs = tuple(Path(d).expanduser() for d in output_dirs)
        report = self._plan(grace_s, output_dirs)
        if not fix:
            return report
        seen = {(p.kind, p.target) for p in report.problems}
        todo = report.problems
        for _ in range(3):  # removing a row can orphan its other blobs: the next pass takes them
            self._execute(report, [p for p in todo if p.fix], grace_s)
            again = self._plan(grace_s, output_dirs)
            report.after_fix = again.problems
            todo = [p for p in again.problems if p.fix and (p.kind, p.target) not in seen]
            if not todo:
                break
            report.problems.extend(todo)
            seen.update((p.kind, p.target) for p in todo)
        return report

    def _plan(self, grace_s: float, output_dirs: tuple[Path, ...]) -> dr.DoctorReport:
        from hub.services.trash import retention_days

        with self.db.read() as conn:
            return dr.plan(self.home, health.registry_facts(conn, retention_days()), grace_s, output_dirs=output_dirs)

    def _execute(self, report: dr.DoctorReport, todo: list[dr.Problem], grace_s: float) -> None:
        rows = [p for p in todo if p.kind in ("missing_file", "orphan_rows", "expired_trash")]
        files = [p for p in todo if p not in rows]
        if rows:
            with self.db.write() as conn:
                self.lock(conn)
                for p in rows:
                    if p.kind == "orphan_rows":
                        health.delete_orphan_rows(conn, p.target)
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
            self.lock(conn)
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
        shas = health.file_shas(conn, problem.adapter_id)
        return shas is not None and any(not self.store.has(s) for s in shas)


