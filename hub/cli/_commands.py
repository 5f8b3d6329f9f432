"""Which module defines each `hub` command, and loading them: a command imports only its
own module (tests/test_startup_imports.py holds the table to what the modules define)."""

from __future__ import annotations

import importlib

COMMANDS = {
    **dict.fromkeys(("add", "scan", "list", "show", "rm", "tag", "rename", "export", "verify"), "hub.cli.adapters"),
    "base": "hub.cli.base",
    "check": "hub.cli.check",
    "db": "hub.cli.db",
    "demo": "hub.cli.demo",
    "tui": "hub.cli.tui",
    "doctor": "hub.cli.doctor",
    **dict.fromkeys(("pull", "push", "search-remote", "status"), "hub.cli.sync"),
    **dict.fromkeys(("merge", "models"), "hub.cli.merge"),
    **dict.fromkeys(("combine", "similar"), "hub.cli.combine"),
    **dict.fromkeys(("versions", "alias"), "hub.cli.versions"),
    "serve": "hub.cli.serve",
    **dict.fromkeys(("resize", "fix", "extract"), "hub.cli.surgery"),
    "plugins": "hub.cli.plugins",
    "trash": "hub.cli.trash",
}
COMMAND_MODULES = tuple(dict.fromkeys(COMMANDS.values()))
_loaded = False


def load_command(name: str) -> None:
    """Import the module that defines command ``name`` (all of them for an unknown name,
    so that click can suggest the closest)."""
    module = COMMANDS.get(name)
    if module is None:
        load_commands()
    else:
        importlib.import_module(module)


def load_commands() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in COMMAND_MODULES:
        importlib.import_module(module)
