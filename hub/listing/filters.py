"""What `hub list` asks for, without SQLAlchemy: the filter, its bound values by name,
and its shape (what the SQL text depends on). hub.registry.adapters builds the query
from these; hub.registry.fastread reuses the compiled text with new values."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ListFilter:
    base: str | None = None
    rank: int | None = None
    alpha: float | None = None
    targets: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    no_flags: tuple[str, ...] = ()
    search: str | None = None
    fits: int | None = None          # base id
    sort: str = "name"
    desc: bool = False
    limit: int | None = None
    offset: int = 0
    all_versions: bool = False       # else one row per name (its latest version)


def search_words(search: str | None) -> tuple[str, ...]:
    """The words of a search: each must appear in the name, the description or a target."""
    return tuple((search or "").split())


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere (escape character: backslash)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def list_params(f: ListFilter) -> dict[str, object]:
    """The values the list query binds, by parameter name."""
    p: dict[str, object] = {}
    if f.base:
        p["base"] = f.base
        p["base_like"] = like_pattern(f.base)
    if f.rank is not None:
        p["rank"] = f.rank
    if f.alpha is not None:
        p["alpha"] = f.alpha
    # targets, tags and search words match as substrings (the filter language's rule)
    p.update({f"target_{i}": like_pattern(t) for i, t in enumerate(f.targets)})
    p.update({f"tag_{i}": like_pattern(t) for i, t in enumerate(f.tags)})
    p.update({f"search_{i}": like_pattern(w) for i, w in enumerate(search_words(f.search))})
    if f.fits is not None:
        p["fits"] = f.fits
    if f.limit is not None:
        p["limit"] = f.limit
    if f.offset:
        p["offset"] = f.offset
    return p


def list_shape(f: ListFilter) -> str:
    """Two filters with the same shape compile to the same SQL text."""
    values = set(list_params(f))
    flags = ",".join(sorted(f.flags)) + "/" + ",".join(sorted(f.no_flags))
    return (f"{'|'.join(sorted(values))};{len(f.targets)};{len(f.tags)};{flags};{f.sort};{int(f.desc)};"
            f"{int(f.all_versions)}")


__all__ = ["ListFilter", "like_pattern", "search_words", "list_params", "list_shape"]
