"""Combination methods as small registered units with declared parameters.

Each method module calls :func:`register` with a :class:`Method`: its name, whether
it is exact, its parameters (name, type, default, bounds) and a function that
combines one module. The engine, the CLI help and the recipe check all read the
declarations from here, so a new method is one new module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from hub.errors import UsageError


@dataclass(frozen=True)
class Param:
    name: str
    type: type                      # int | float | str
    help: str
    default: Any = None             # None with required=False: optional, unset
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple[str, ...] | None = None

    def check(self, value: Any, method: str) -> Any:
        where = f"method {method}, parameter {self.name}"
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.type) or isinstance(value, bool):
            raise UsageError(f"{self.name} must be {self.type.__name__}, got {value!r}", where,
                             f"pass a valid {self.type.__name__}")
        if self.choices is not None and value not in self.choices:
            raise UsageError(f"{self.name} must be one of {', '.join(self.choices)}, got {value!r}", where,
                             "pick one of the listed values")
        low_ok = self.minimum is None or (value > self.minimum if self.exclusive_minimum else value >= self.minimum)
        high_ok = self.maximum is None or value <= self.maximum
        if not (low_ok and high_ok):
            low = "-inf" if self.minimum is None else f"{self.minimum:g}"
            high = "inf" if self.maximum is None else f"{self.maximum:g}"
            bracket = "(" if self.exclusive_minimum else "["
            raise UsageError(f"{self.name}={value!r} is out of range {bracket}{low}, {high}]", where,
                             "pass a value inside the range")
        return value


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    exact: bool                     # result equals the weighted sum of deltas (no approximation)
    params: tuple[Param, ...]
    combine: Callable               # (terms, params, ctx) -> ModuleResult; see hub.combine.engine
    space: str = "factors"          # factors: never forms a dense delta | delta: dense per module

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def resolve(self, given: dict[str, Any]) -> dict[str, Any]:
        """Check ``given`` against the declarations; fill defaults. Unset optionals
        (None) are dropped from ``given`` first, so callers can pass every CLI option."""
        given = {k: v for k, v in given.items() if v is not None}
        unknown = sorted(set(given) - {p.name for p in self.params})
        if unknown:
            accepted = ", ".join(p.name for p in self.params) or "none"
            raise UsageError(f"method {self.name} takes no parameter {', '.join(unknown)}", f"method {self.name}",
                             f"accepted parameters: {accepted}")
        out: dict[str, Any] = {}
        for p in self.params:
            if p.name in given:
                out[p.name] = p.check(given[p.name], self.name)
            elif p.required:
                raise UsageError(f"method {self.name} needs {p.name}", f"method {self.name}",
                                 f"pass --{p.name.replace('_', '-')} ({p.help})")
            elif p.default is not None:
                out[p.name] = p.default
        return out


_METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    if method.name in _METHODS:
        raise ValueError(f"combination method {method.name!r} registered twice")
    _METHODS[method.name] = method
    return method


def _load_builtin() -> None:
    # importing the modules registers them; kept lazy so registry.py has no import cycle
    from hub.combine import dare, exact, magnitude, svd, ties  # noqa: F401


def _load_plugin(name: str) -> None:
    """A method from another distribution's ``hub.methods`` entry point, loaded on first use."""
    from hub import plugins

    method = plugins.load("hub.methods", name)
    if not isinstance(method, Method) or method.name != name:
        raise UsageError(f"plugin method {name!r} is not a hub.combine.registry.Method named {name!r}",
                         plugins.find("hub.methods", name).origin, "fix or uninstall that package")
    _METHODS.setdefault(name, method)


def get_method(name: str) -> Method:
    _load_builtin()
    if name not in _METHODS and name in method_names():
        _load_plugin(name)
    try:
        return _METHODS[name]
    except KeyError:
        raise UsageError(f"unknown combination method {name!r}", "--method",
                         f"use one of: {', '.join(method_names())}") from None


def method_names() -> list[str]:
    """Built-in and installed methods (plugins are named from metadata, not imported)."""
    from hub import plugins

    _load_builtin()
    return sorted(set(_METHODS) | set(plugins.names("hub.methods")))


def all_methods() -> list[Method]:
    return [get_method(name) for name in method_names()]
