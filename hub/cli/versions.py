"""Version commands: versions, alias (NAME[@VERSION|ALIAS] grammar: hub.refs)."""

from __future__ import annotations

import click

from hub.cli._app import cli, json_option, pass_state
from hub.cli._output import emit_json, human_size, table


@cli.command()
@click.argument("name")
@json_option
@pass_state
def versions(state, name, as_json):
    """List the versions of NAME: number, hash, commit id, date, source, aliases.

    NAME is its latest version; NAME@N and NAME@ALIAS name the others in every command.
    """
    found = state.reader.versions(name)
    if as_json:
        emit_json([v.to_dict() for v in found])
        return
    table(["VERSION", "SHA256", "COMMIT", "CREATED", "SOURCE", "SIZE", "ALIASES"],
          [[f"{v.version}{' (latest)' if v.latest else ''}", v.sha256[:12], v.commit[:12], v.created_at[:19],
            v.source.get("repo") or v.source.get("path") or v.source.get("kind") or "-", human_size(v.size_bytes),
            ",".join(v.aliases) or "-"] for v in found], max_widths={4: 40})


@cli.command()
@click.argument("name")
@click.argument("alias")
@click.argument("version", required=False)
@click.option("--rm", "remove", is_flag=True, help="Drop the alias instead.")
@json_option
@pass_state
def alias(state, name, alias, version, remove, as_json):
    """Point NAME@ALIAS at VERSION of NAME (made or moved), or drop it with --rm.

    \b
    hub alias style prod 3        style@prod is version 3
    hub alias style prod --rm     drop it
    Reserved, never aliases: main, latest, vN, plain numbers, 40-hex commit ids.
    """
    if remove and version is not None:
        raise click.UsageError("--rm takes no VERSION")
    found = state.hub.alias(name, alias, version, remove=remove)
    if as_json:
        emit_json({"name": name, "alias": alias, "version": None if found is None else found.version,
                   "removed": remove})
    elif found is None:
        click.echo(f"dropped {name}@{alias}")
    else:
        click.echo(f"{name}@{alias} -> version {found.version} ({found.sha256[:12]})")
