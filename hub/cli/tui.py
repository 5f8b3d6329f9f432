"""`hub tui`: the terminal UI over the same service as the CLI."""

from __future__ import annotations

import click

from hub.cli._app import cli, pass_state


@cli.command()
@click.option("--theme", help="Textual theme, e.g. textual-dark or textual-light (ctrl+p > Theme switches live).")
@pass_state
def tui(state, theme):
    """Browse, inspect, check, combine, merge and pull adapters in a terminal UI.

    Press ? inside for keys and a short guide.
    """
    from hub.tui.app import create_app

    create_app(state.hub, theme=theme).run()
