"""Adapter and model names: safe in shells, paths, URLs and `NAME:WEIGHT` specs."""

from __future__ import annotations

import re

from hub.errors import UsageError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*(/[A-Za-z0-9][A-Za-z0-9._+-]*)?$")
MAX_NAME = 200
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+/-]{0,99}$")


def check_name(name: str, what: str = "name") -> str:
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or not _NAME.match(name) or ".." in name:
        shown = name.encode("unicode_escape").decode() if isinstance(name, str) else repr(name)
        raise UsageError(f"invalid {what} {shown!r}", None,
                         "use letters, digits and . _ + - (optionally one '/'), starting with a letter or digit")
    return name


def check_tag(tag: str) -> str:
    if not isinstance(tag, str) or not _TAG.match(tag):
        shown = tag.encode("unicode_escape").decode() if isinstance(tag, str) else repr(tag)
        raise UsageError(f"invalid tag {shown!r}", None, "use up to 100 letters, digits and . _ : + / -")
    return tag


def name_from_folder(folder_name: str) -> str:
    """A valid default name derived from a folder name."""
    cleaned = re.sub(r"[^A-Za-z0-9._+-]+", "-", folder_name).strip("-.")
    cleaned = re.sub(r"\.{2,}", ".", cleaned)
    return (cleaned or "adapter")[:MAX_NAME]


def parse_weighted(spec: str, default: float = 1.0) -> tuple[str, float]:
    """'name:0.5' -> ('name', 0.5); 'name' -> ('name', default); 'name@prod:0.5' ->
    ('name@prod', 0.5) (versions and aliases: hub.refs)."""
    from hub.refs import parse_ref

    name, sep, weight = spec.rpartition(":")
    if not sep:
        return str(parse_ref(spec)), default
    try:
        value = float(weight)
    except ValueError:
        raise UsageError(f"weight {weight!r} in {spec!r} is not a number", None, "write NAME:WEIGHT, e.g. style:0.7") from None
    return str(parse_ref(name)), value
