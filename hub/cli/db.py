"""Operator commands for the registry database."""

from __future__ import annotations

import click

from hub.cli._app import cli, json_option, pass_state
from hub.cli._output import emit_json


@cli.group()
def db():
    """Registry database: current revision and upgrades (migrations also run on every open)."""


@db.command()
@json_option
@pass_state
def current(state, as_json):
    """Print the database URL and its schema revision."""
    from hub import dbadmin

    found = dbadmin.current(state.home, state.db_url)
    if as_json:
        emit_json(found)
    else:
        click.echo(f"{found['url']}\nrevision {found['revision'] or '(empty)'} (head {found['head']})"
                   f"{'' if found['up_to_date'] else ' - run `hub db upgrade`'}")


@db.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@pass_state
def upgrade(state, revision):
    """Apply migrations up to REVISION."""
    from hub import dbadmin

    before, after = dbadmin.upgrade(state.home, state.db_url, revision)
    click.echo(f"upgraded {before or '(empty)'} -> {after}")
