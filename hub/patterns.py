"""Untrusted regular expressions, evaluated under a time budget.

An adapter config's ``target_modules`` (a string), ``rank_pattern``/``alpha_pattern``
keys, ``exclude_modules``, ``layers_pattern`` and a recipe's ``layer_weights.match`` are
regular expressions written by whoever made the file. A backtracking pattern such as
``(a|aa)+$`` runs for hours on a long module path. PEFT evaluates them with Python's
``re``; hub evaluates them with the ``regex`` package in its re-compatible V0 mode (the
same syntax and results, backreferences included, which a linear-time engine such as RE2
would refuse) and with its ``timeout``: one budget per adapter or recipe, shared by every
evaluation inside ``budget()``. Running out raises ``PatternTimeout`` (an InvalidConfig,
so `add` refuses, `scan` records the folder as failed and goes on, `check` reports the
finding ``PATTERN_TOO_SLOW``).
"""

from __future__ import annotations

import contextvars
import os
import time
from contextlib import contextmanager
from functools import lru_cache

import regex

from hub.errors import InvalidConfig

DEFAULT_BUDGET_S = 1.0
CODE = "PATTERN_TOO_SLOW"
PatternError = regex.error

# seconds left to the pattern evaluations of the current budget (a one-element list, shared)
_LEFT: contextvars.ContextVar[list | None] = contextvars.ContextVar("hub_pattern_budget", default=None)


class PatternTimeout(InvalidConfig):
    """An untrusted pattern used up its time budget."""

    def __init__(self, pattern: str, text: str, seconds: float):
        shown = pattern if len(pattern) <= 60 else pattern[:57] + "..."
        self.pattern = pattern
        super().__init__(f"{CODE}: pattern {shown!r} did not finish within {seconds:g} s on {text[:80]!r}",
                         None, "PEFT would hang on it too; simplify the pattern (no nested repeats)")


def budget_seconds() -> float:
    try:
        value = float(os.environ.get("HUB_PATTERN_BUDGET", ""))
    except ValueError:
        return DEFAULT_BUDGET_S
    return value if value > 0 else DEFAULT_BUDGET_S


@contextmanager
def budget(seconds: float | None = None):
    """Every evaluation inside draws on one budget of ``seconds`` spent evaluating patterns
    (default HUB_PATTERN_BUDGET or 1 s; reading files in between costs nothing). A nested
    budget joins the outer one."""
    if _LEFT.get() is not None:
        yield
        return
    token = _LEFT.set([seconds or budget_seconds()])
    try:
        yield
    finally:
        _LEFT.reset(token)


@lru_cache(maxsize=512)
def compile(pattern: str) -> regex.Pattern:  # noqa: A001 - mirrors re.compile
    """Raises ``PatternError`` (regex.error) for a pattern that does not compile."""
    return regex.compile(pattern, regex.V0)


def _run(method: str, pattern: str, text: str):
    left = _LEFT.get() or [budget_seconds()]   # outside a budget: one budget per evaluation
    start = time.monotonic()
    try:
        return getattr(compile(pattern), method)(text, timeout=max(left[0], 0.001))
    except TimeoutError:
        left[0] = 0.0
        raise PatternTimeout(pattern, text, budget_seconds()) from None
    finally:
        left[0] -= time.monotonic() - start


def fullmatch(pattern: str, text: str):
    return _run("fullmatch", pattern, text)


def match(pattern: str, text: str):
    return _run("match", pattern, text)


def search(pattern: str, text: str):
    return _run("search", pattern, text)
