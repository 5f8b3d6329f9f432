"""`hub` command line. Each noun lives in its own module listed in COMMAND_MODULES."""

from __future__ import annotations

import importlib

from hub.cli._app import cli, main

COMMAND_MODULES = (
    "hub.cli.adapters",
    "hub.cli.base",
    "hub.cli.check",
    "hub.cli.db",
    "hub.cli.demo",
    "hub.cli.tui",
    "hub.cli.doctor",
    "hub.cli.sync",
    "hub.cli.merge",
    "hub.cli.combine",
    "hub.cli.versions",
    "hub.cli.serve",
    "hub.cli.surgery",
    "hub.cli.plugins",
    "hub.cli.trash",
)
_loaded = False


def load_commands() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in COMMAND_MODULES:
        importlib.import_module(module)


__all__ = ["cli", "main", "load_commands", "COMMAND_MODULES"]
