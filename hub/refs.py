"""The one grammar for naming an adapter version: ``NAME[@VERSION|ALIAS]``.

``NAME`` (or ``NAME@main`` / ``NAME@latest``) is the latest version, ``NAME@3`` or
``NAME@v3`` version 3, ``NAME@<40 hex>`` the version with that commit id (what `hub serve`
shows as the Hub commit), anything else after ``@`` an alias (``NAME@prod``). The words
that name versions are reserved and never aliases. Every command, combine spec and
``--layer-weights`` rule that takes a name parses it here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from hub.errors import UsageError
from hub.names import check_alias_word, check_name, parse_weight

LATEST_WORDS = frozenset({"main", "latest"})
_VERSION = re.compile(r"v?([0-9]{1,9})")  # fullmatch: no trailing newline
_COMMIT = re.compile(r"[0-9a-f]{40}")  # fullmatch: no trailing newline


@dataclass(frozen=True)
class Ref:
    name: str
    version: int | None = None
    alias: str | None = None
    commit: str | None = None

    @property
    def is_latest(self) -> bool:
        return self.version is None and self.alias is None and self.commit is None

    def __str__(self) -> str:
        pin = self.version if self.version is not None else (self.alias or self.commit)
        return self.name if pin is None else f"{self.name}@{pin}"


def is_reserved(word: str) -> bool:
    """Words that name versions (main, latest, vN, N, 40-hex ids): never aliases."""
    return word.lower() in LATEST_WORDS or bool(_VERSION.fullmatch(word)) or bool(_COMMIT.fullmatch(word.lower()))


def check_alias(alias: str) -> str:
    check_alias_word(alias)
    if is_reserved(alias):
        raise UsageError(f"{alias!r} is reserved and cannot be an alias", None,
                         "main, latest, vN, plain numbers and 40-hex ids name versions; choose another word")
    return alias


def parse_ref(text: str, what: str = "adapter name") -> Ref:
    """'style' / 'style@2' / 'style@v2' / 'style@prod' / 'org/style@main' -> Ref."""
    if not isinstance(text, str):
        raise UsageError(f"invalid {what} {text!r}", None, "write NAME or NAME@VERSION|ALIAS")
    name, sep, pin = text.partition("@")
    check_name(name, what)
    if not sep:
        return Ref(name)
    if pin.lower() in LATEST_WORDS:
        return Ref(name)
    if m := _VERSION.fullmatch(pin):
        version = int(m.group(1))
        if version < 1:
            raise UsageError(f"version {pin!r} in {text!r} does not exist", None, "versions are numbered from 1")
        return Ref(name, version=version)
    if _COMMIT.fullmatch(pin.lower()):
        return Ref(name, commit=pin.lower())
    try:
        check_alias_word(pin)
    except UsageError:
        raise UsageError(f"invalid {what} {text!r}", None,
                         "write NAME, NAME@VERSION (e.g. style@2) or NAME@ALIAS (e.g. style@prod)") from None
    return Ref(name, alias=pin)


def try_parse_ref(text: str) -> Ref | None:
    try:
        return parse_ref(text)
    except UsageError:
        return None


def version_commit(sha256: str) -> str:
    """A version's 40-hex commit id: derived from its content hash, so it is stable across
    renames and the same on every hub holding the same version."""
    return hashlib.sha1(f"hub-version\0{sha256}".encode()).hexdigest()


def parse_weighted(spec: str, default: float = 1.0) -> tuple[str, float]:
    """'name:0.5' -> ('name', 0.5); 'name' -> ('name', default); 'name@prod:0.5' ->
    ('name@prod', 0.5) (versions and aliases)."""
    name, sep, weight = spec.rpartition(":")
    if not sep:
        return str(parse_ref(spec)), default
    value = parse_weight(weight, spec)
    return str(parse_ref(name)), value


__all__ = ["Ref", "parse_ref", "try_parse_ref", "check_alias", "is_reserved", "version_commit", "LATEST_WORDS",
           "parse_weighted"]
