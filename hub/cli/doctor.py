"""`hub doctor`: check the registry against the store and repair leftovers."""

from __future__ import annotations

import sys

import click

from hub.cli._app import cli, json_option, pass_state, stderr
from hub.cli._output import emit_json, human_size
from hub.doctor import DEFAULT_GRACE_S


@cli.command()
@click.option("--fix", is_flag=True, help="Repair what can be repaired (default: only report, like --dry-run).")
@click.option("--dry-run", is_flag=True, help="Only report what --fix would do (the default).")
@click.option("--grace", "grace_s", type=click.FloatRange(min=0), default=DEFAULT_GRACE_S, show_default=True,
              metavar="SECONDS",
              help="Leave leftovers younger than this alone: they may belong to a hub process still running.")
@click.option("--outputs", "output_dirs", multiple=True, type=click.Path(file_okay=False), metavar="DIR",
              help="Also look in DIR for unfinished merge/export outputs (repeatable; folders of "
                   "recorded merged models are always searched).")
@json_option
@pass_state
def doctor(state, fix, dry_run, grace_s, output_dirs, as_json):
    """Find what interrupted work left behind and, with --fix, repair it.

    Checks: unfinished staging files under HUB_HOME/tmp, store files no adapter
    uses, stray files in the store, stale views, registry rows whose files are
    gone, linked adapters and merged models whose folder is gone, orphaned child
    rows, hidden unfinished merge/export outputs, and (SQLite) the database's own
    integrity check. Exits 0 when healthy (after --fix), 1 when
    problems remain.
    """
    report = state.hub.doctor(fix=fix and not dry_run, grace_s=grace_s, output_dirs=output_dirs)
    if as_json:
        emit_json(report.to_dict())
    else:
        fixed = {id(p) for p in report.fixed}
        left = {(p.kind, p.target) for p in report.remaining}
        for p in report.problems:
            if id(p) in fixed:
                verb = "fixed"
            elif report.after_fix is not None and (p.kind, p.target) not in left:
                verb = "resolved"
            elif p.fix is None:
                verb = "manual"
            else:
                verb = "would fix" if not fix or dry_run else "not fixed"
            size = f" ({human_size(p.size)})" if p.size else ""
            click.echo(f"{verb:<9} {p.kind:<13} {p.target}{size}: {p.detail}"
                       + (f" -> {p.fix}" if p.fix and id(p) not in fixed else ""))
        for p, error in report.failed:
            stderr(f"hub: could not fix {p.target}: {error}")
        c = report.checked
        summary = (f"checked {c.get('adapters', 0)} adapters, {c.get('blobs', 0)} store files, "
                   f"{c.get('tmp_entries', 0)} tmp entries, {c.get('views', 0)} views: "
                   f"{len(report.problems)} problem(s), {len(report.fixed)} fixed, {len(report.remaining)} remaining")
        if report.skipped_recent:
            summary += f"; {report.skipped_recent} recent item(s) left alone (younger than --grace {grace_s:g}s)"
        stderr(summary)
        if report.remaining and not fix:
            stderr("run `hub doctor --fix` to repair")
    if not report.healthy:
        sys.exit(1)
