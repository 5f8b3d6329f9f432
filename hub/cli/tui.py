"""`hub tui`: the terminal UI over the same service as the CLI."""

from __future__ import annotations

import click

from hub.cli._app import cli, pass_state


def _check_theme(_ctx, _param, value):
    if value is None:
        return None
    from textual.theme import BUILTIN_THEMES

    if value not in BUILTIN_THEMES:
        raise click.BadParameter(f"unknown theme {value!r}; one of: {', '.join(sorted(BUILTIN_THEMES))}")
    return value


@cli.command()
@click.option("--theme", callback=_check_theme,
              help="Textual theme, e.g. textual-dark or textual-light (ctrl+p > Theme switches live).")
@pass_state
def tui(state, theme):
    """Browse, inspect, check, combine, merge and pull adapters in a terminal UI.

    Press ? inside for keys and a short guide.
    """
    from hub.tui.app import create_app

    create_app(state.hub, theme=theme).run()
