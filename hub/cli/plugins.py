"""`hub plugins`: the formats, runtimes and combination methods hub can use, and where they come from."""

from __future__ import annotations


from hub.cli._app import cli, json_option
from hub.cli._output import emit_json, table


@cli.command("plugins")
@json_option
def plugins_(as_json):
    """List formats, runtimes and methods: hub's own and those other packages add through
    the entry-point groups hub.formats, hub.runtimes and hub.methods. Nothing is imported."""
    from hub import plugins

    found = plugins.plugins()
    if as_json:
        emit_json([p.to_dict() for p in found])
        return
    table(["NAME", "KIND", "ORIGIN", "ENTRY POINT"], [[p.name, p.kind, p.origin, p.value] for p in found])
