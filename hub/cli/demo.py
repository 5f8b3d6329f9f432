"""`hub demo`: build tiny real bases and adapters offline and run the main job on them."""

from __future__ import annotations

from pathlib import Path

import click

from hub.cli._app import cli, pass_state


@cli.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Where to build the demo models (default: HUB_HOME/demo).")
@pass_state
def demo(state, directory):
    """Build tiny real models and PEFT adapters offline, register them, and walk through
    list, show, check, merge and combine on them."""
    from hub.demo.run import run_demo

    run_demo(state.hub, directory or state.hub.home / "demo", echo=click.echo)
