"""Looking up combination methods by name.

Built-ins (hub.combine.methods) and other distributions' methods are found the same
way, through the ``hub.methods`` entry-point group (hub.plugins): each entry names a
:class:`~hub.combine.declare.Method` declaration, which loads without torch or the
method's maths. The engine, the CLI's options and help, the recipe check, hub.compat's
method rules and the TUI's combine form all read these declarations.
"""

from __future__ import annotations

from hub.combine.declare import Method, Param
from hub.errors import UsageError

GROUP = "hub.methods"
_LOADED: dict[str, Method] = {}


def get_method(name: str) -> Method:
    from hub import plugins

    if name in _LOADED:
        return _LOADED[name]
    if name not in plugins.names(GROUP):
        raise UsageError(f"unknown combination method {name!r}", "--method",
                         f"use one of: {', '.join(method_names())} (installed plugins: `hub plugins`)")
    method = plugins.load(GROUP, name)
    if not isinstance(method, Method) or method.name != name:
        raise UsageError(f"plugin method {name!r} is not a hub.combine.declare.Method named {name!r}",
                         plugins.find(GROUP, name).origin, "fix or uninstall that package")
    _LOADED[name] = method
    return method


def method_names() -> list[str]:
    """Built-in and installed methods (plugins are named from metadata, not imported)."""
    from hub import plugins

    return plugins.names(GROUP)


def builtin_methods() -> list[Method]:
    """hub's own declarations, without discovering installed distributions (the CLI builds
    its options from these at start-up)."""
    from hub.combine.methods import BUILTIN

    return list(BUILTIN)


def all_methods() -> list[Method]:
    return [get_method(name) for name in method_names()]


def shared_params(methods: list[Method]) -> dict[str, tuple[Param, list[str]]]:
    """Each parameter name -> (its declaration, the methods taking it), in first-use order.
    Methods that share a name share the declaration (one CLI option serves them all)."""
    out: dict[str, tuple[Param, list[str]]] = {}
    for m in methods:
        for p in m.params:
            seen = out.setdefault(p.name, (p, []))
            if seen[0] != p:
                raise ValueError(f"methods {seen[1][0]} and {m.name} declare parameter {p.name!r} differently")
            seen[1].append(m.name)
    return out
