"""`hub demo`: build tiny real bases and adapters offline and run the main job on them."""

from __future__ import annotations

from pathlib import Path

import click

from hub.cli._app import cli, pass_state


@cli.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Where to build the demo models and the merged model (default: a folder beside HUB_HOME named after it, e.g. .demo-models for HUB_HOME=.demo; never inside HUB_HOME, where the write guard refuses outputs).")
@pass_state
def demo(state, directory):
    """Build tiny real models and PEFT adapters offline, register them, and walk through
    list, show, check, merge and combine on them."""
    from hub.demo.run import run_demo

    home = state.hub.home
    run_demo(state.hub, directory or home.parent / f"{home.name}-models", echo=click.echo)
