"""`hub trash`: adapters that `hub rm` removed, kept for HUB_TRASH_DAYS (default 30) days."""

from __future__ import annotations

import sys

import click

from hub.cli._app import cli, json_option, pass_state, stderr
from hub.cli._output import emit_json, human_size, table


@cli.group()
def trash():
    """List, restore or empty removed adapters (kept for HUB_TRASH_DAYS days, default 30;
    `hub doctor --fix` empties older entries)."""


@trash.command("list")
@json_option
@pass_state
def trash_list(state, as_json):
    """Removed adapters, newest first, with when they expire."""
    entries = state.hub.trash_list()
    if as_json:
        emit_json([e.to_dict() for e in entries])
        return
    if not entries:
        stderr("the trash is empty")
        return
    table(["ID", "NAME", "SIZE", "REMOVED", "EXPIRES"],
          [[e.id, e.name, human_size(e.size_bytes), e.trashed_at.strftime("%Y-%m-%d %H:%M"),
            e.expires_at.strftime("%Y-%m-%d")] for e in entries])


@trash.command("restore")
@click.argument("name")
@click.option("--as", "new_name", help="Register it under this name instead (its old name may be taken).")
@json_option
@pass_state
def trash_restore(state, name, new_name, as_json):
    """Bring back the newest removed adapter called NAME (or the entry with id NAME)."""
    rec = state.hub.trash_restore(name, new_name)
    if as_json:
        emit_json({"name": rec.name, "sha256": rec.sha256})
    else:
        click.echo(f"restored {rec.name}")


@trash.command("empty")
@click.argument("name", required=False)
@click.option("--older-than", "older_than", type=click.FloatRange(min=0), metavar="DAYS",
              help="Only entries removed more than DAYS days ago.")
@click.option("--dry-run", is_flag=True, help="Show what would be emptied and stop.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_state
def trash_empty(state, name, older_than, dry_run, yes, as_json):
    """Delete removed adapters for good (all, NAME's entries, or those older than --older-than)."""
    hub = state.hub
    preview = hub.trash_empty(name, older_than, dry_run=True)
    if dry_run or not preview.entries:
        if as_json:
            emit_json({"dry_run": True, **preview.to_dict()})
        else:
            stderr(f"{'would empty' if preview.entries else 'nothing to empty:'} {len(preview.entries)} entr"
                   f"{'y' if len(preview.entries) == 1 else 'ies'}, up to {human_size(preview.bytes_freed)}")
        return
    if not yes and sys.stdin.isatty() and not click.confirm(
            f"Delete {len(preview.entries)} removed adapter(s) for good?", err=True):
        raise click.exceptions.Exit(1)
    result = hub.trash_empty(name, older_than)
    if as_json:
        emit_json({"dry_run": False, **result.to_dict()})
    else:
        stderr(f"emptied {len(result.entries)} entr{'y' if len(result.entries) == 1 else 'ies'}: "
               f"{result.blobs_deleted} store file(s), {human_size(result.bytes_freed)} freed")
