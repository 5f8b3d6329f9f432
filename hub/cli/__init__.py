"""`hub` command line. Each noun lives in its own module (hub.cli._commands.COMMANDS)."""

from __future__ import annotations

from hub.cli._app import cli, main
from hub.cli._commands import COMMAND_MODULES, COMMANDS, load_command, load_commands

__all__ = ["cli", "main", "load_command", "load_commands", "COMMANDS", "COMMAND_MODULES"]
