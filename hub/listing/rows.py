"""The adapter browser's row type, the columns it sorts on and its Source labels: what the
paged SQL queries (hub.registry.browse) and the in-memory index (hub.listing.index) share."""

from __future__ import annotations

import os
from dataclasses import dataclass

from hub.flags import FLAGS

FLAG_ORDER = FLAGS
PENDING_SOURCE = "…"   # a Source label not read yet

# Every column the browser shows can be sorted on (hub.registry.browse says how in SQL).
BROWSE_SORTS = ("name", "base", "r", "alpha", "targets", "flags", "size", "tags", "source", "created", "params")


@dataclass(frozen=True)
class AdapterRow:
    """One line of the adapter browser: what the table shows, nothing parsed from JSON."""

    name: str
    base: str
    r: int
    alpha: float
    targets: tuple[str, ...]
    flags: tuple[str, ...]
    size_bytes: int
    tags: tuple[str, ...]
    source: str


def source_label(kind: str | None, repo: str | None, revision: str | None, path: str | None) -> str:
    """The Source column: hf:REPO[@REV], a local folder's name, or the source kind."""
    if repo:
        return f"hf:{repo}" + (f"@{revision}" if revision and revision != "main" else "")
    if kind == "local" and path:
        return os.path.basename(path.rstrip("/"))
    return kind or "-"
