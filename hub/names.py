"""Adapter and model names: safe in shells, paths, URLs and `NAME:WEIGHT` specs."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from hub.errors import UsageError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*(/[A-Za-z0-9][A-Za-z0-9._+-]*)?")
MAX_NAME = 200
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+/-]{0,99}")
_BASE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/@+-]{0,199}")
_ALIAS = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,99}")


def check_text(text: object, pattern: re.Pattern[str], what: str, fix: str,
               also: Callable[[str], bool] = lambda text: True) -> str:
    """The one validator of what users name things: the *whole* string must match
    (fullmatch: a ``$`` anchor would let a trailing newline through), and ``also``."""
    if not isinstance(text, str) or not pattern.fullmatch(text) or not also(text):
        raise UsageError(f"invalid {what} {text!r}", None, fix)   # repr: control characters shown escaped
    return text


def check_name(name: str, what: str = "name") -> str:
    return check_text(name, _NAME, what,
                      "use letters, digits and . _ + - (optionally one '/'), starting with a letter or digit",
                      also=lambda n: len(n) <= MAX_NAME and ".." not in n)


def check_tag(tag: str) -> str:
    return check_text(tag, _TAG, "tag", "use up to 100 letters, digits and . _ : + / -")


def check_base_name(name: str) -> str:
    return check_text(name, _BASE_NAME, "base name", "use letters, digits and . _ - / @ + (at most 200 characters)")


def check_alias_word(alias: str) -> str:
    """The shape of an alias (hub.refs.check_alias also refuses the words that name versions)."""
    return check_text(alias, _ALIAS, "alias", "use up to 100 letters, digits and . _ - , starting with a letter")


def name_from_folder(folder_name: str) -> str:
    """A valid default name derived from a folder name."""
    cleaned = re.sub(r"[^A-Za-z0-9._+-]+", "-", folder_name).strip("-.")
    cleaned = re.sub(r"\.{2,}", ".", cleaned)
    return (cleaned or "adapter")[:MAX_NAME]


# weights multiply adapter deltas; beyond this they overflow half-precision outputs
# (and float32 soon after), and are always a typo
MAX_WEIGHT = 1e6


def check_weight(value: float, spec: str) -> float:
    """A finite weight within +-MAX_WEIGHT (NaN, inf and 1e39 are refused up front)."""
    if not math.isfinite(value) or abs(value) > MAX_WEIGHT:
        raise UsageError(f"weight {value!r} in {spec!r} is not a finite number within +-{MAX_WEIGHT:g}", None,
                         "write NAME:WEIGHT with a weight such as 0.7 or -0.3")
    return value


def parse_weight(text: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"weight {text!r} in {spec!r} is not a number", None,
                         "write NAME:WEIGHT, e.g. style:0.7") from None
    return check_weight(value, spec)
