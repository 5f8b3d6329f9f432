"""Operator commands for the registry database."""

from __future__ import annotations

import click

from hub.cli._app import cli, json_option, pass_state
from hub.cli._output import emit_json


@cli.group()
def db():
    """Registry database: current revision and upgrades (migrations also run on every open)."""


def _database(state):
    from hub import paths
    from hub.registry.db import Database

    home = None
    if state.home:
        from pathlib import Path

        home = Path(state.home).expanduser().resolve()
    return Database(state.db_url or paths.default_database_url(home))


@db.command()
@json_option
@pass_state
def current(state, as_json):
    """Print the database URL and its schema revision."""
    from hub.registry.schema import HEAD_REVISION

    database = _database(state)
    rev = database.current_revision()
    url = database.engine.url.render_as_string(hide_password=True)
    if as_json:
        emit_json({"url": url, "revision": rev, "head": HEAD_REVISION, "up_to_date": rev == HEAD_REVISION})
    else:
        click.echo(f"{url}\nrevision {rev or '(empty)'} (head {HEAD_REVISION}){'' if rev == HEAD_REVISION else ' - run `hub db upgrade`'}")


@db.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@pass_state
def upgrade(state, revision):
    """Apply migrations up to REVISION."""
    database = _database(state)
    before = database.current_revision()
    database.upgrade(revision)
    click.echo(f"upgraded {before or '(empty)'} -> {database.current_revision()}")
