"""What a combination method is, declared without its maths: name, summary, whether it
is exact, its parameters (name, type, default, bounds, help) and its compatibility rule
(the result's rank, whether ranks must agree).

This module and the table of built-ins (hub.combine.methods) import neither torch nor a
method's code, so `hub combine --help`, its options, `hub check --method` (hub.compat's
method rules) and the TUI's combine form read the declarations for free; the function
that combines one module (``combine``) is named as "module:function" and imported on
first use. A plugin (entry-point group ``hub.methods``) provides a :class:`Method` the
same way; ``combine`` may also be the function itself.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from typing import Any, Callable

from hub.errors import UsageError

RANK_RULES = ("sum", "k", "r")    # Σ rᵢ | --rank K (default: largest parent rank) | the common rank


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

    def parse(self, text: str) -> Any:
        """A value given as text (``--param NAME=VALUE``), converted to the declared type."""
        if self.type is str:
            return text
        try:
            return self.type(text)
        except ValueError:
            raise UsageError(f"{self.name} must be {self.type.__name__}, got {text!r}", f"--param {self.name}",
                             f"pass a valid {self.type.__name__}") from None

    @property
    def option(self) -> str:
        """The CLI option that sets it."""
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    exact: bool                     # result equals the weighted sum of deltas (no approximation)
    params: tuple[Param, ...]
    combine: Callable | str         # (terms, params, ctx) -> ModuleResult, or "module:function" of one
    space: str = "factors"          # factors: never forms a dense delta | delta: dense per module
    rank: str = ""                  # one of RANK_RULES; "" = "sum" when exact, else "k"
    equal_ranks: bool = False       # mixes factors elementwise, so the parents' ranks must agree
    # array libraries its function takes (hub.combine.arrays); hub loads numpy factors where
    # it may, so that the run never imports torch
    arrays: tuple[str, ...] = ("torch",)

    @property
    def rank_rule(self) -> str:
        return self.rank or ("sum" if self.exact else "k")

    def function(self) -> Callable:
        """The per-module combine function (imports the method's maths on first use)."""
        return _resolve(self.combine) if isinstance(self.combine, str) else self.combine

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


@cache
def _resolve(ref: str) -> Callable:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)
