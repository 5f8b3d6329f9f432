"""The filter language, one parser for `hub list QUERY` and the TUI's filter box.

    base:llama r:16 target:q_proj tag:prod flag:dora -flag:rslora fits:BASE alpha:32 words…

Plain words must each appear in the name, the description or a target module; ``key:value``
terms narrow further (all terms must hold). Everything matches as a case-insensitive
substring except the numbers (``r``, ``alpha``) and ``flag``. A term still being typed
(``base:``) is ignored, so the TUI can filter on every keystroke. No SQLAlchemy here.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, replace

from hub.errors import UsageError
from hub.flags import FLAG_LABELS, FLAGS
from hub.listing.filters import ListFilter, search_words

_FLAG_ALIASES = {"modules_to_save": "mts", "fan_in_fan_out": "fifo", "embedding": "embed", "lora_bias": "bias",
                 "rs": "rslora", **{label.lower(): f for f, label in FLAG_LABELS.items()}, **{f: f for f in FLAGS}}
KEYS = {  # accepted key -> canonical key
    "base": "base", "b": "base", "r": "r", "rank": "r", "alpha": "alpha", "a": "alpha",
    "target": "target", "t": "target", "tag": "tag", "flag": "flag", "f": "flag", "is": "flag",
    "-flag": "-flag", "!flag": "-flag", "not": "-flag", "fits": "fits",
}


@dataclass(frozen=True)
class Query:
    """A parsed query: the filter (``fits`` still a base *name*) and what to highlight."""

    filter: ListFilter
    fits: str | None = None
    words: tuple[str, ...] = ()      # plain words (highlighted in names and targets)
    highlights: dict = field(default_factory=dict)   # column key -> substrings to highlight

    def to_filter(self, base_id=None) -> ListFilter:
        """The ListFilter; ``base_id(name) -> int`` resolves ``fits:`` (required when it is used)."""
        if self.fits is None:
            return self.filter
        if base_id is None:
            raise UsageError("fits: needs the registry to look up the base", None, "use it with `hub list`")
        return replace(self.filter, fits=base_id(self.fits))

    @property
    def empty(self) -> bool:
        return self.filter == ListFilter(sort=self.filter.sort, desc=self.filter.desc) and self.fits is None


def _tokens(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:  # an unclosed quote while typing: split on spaces
        return text.replace('"', " ").replace("'", " ").split()


def _number(key: str, value: str, kind):
    try:
        number = kind(value)
    except ValueError:
        raise UsageError(f"{key}:{value} is not a number", None, f"write e.g. {key}:16") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise UsageError(f"{key}:{value} is not a finite number", None, f"write e.g. {key}:16")
    return number


def parse_query(text: str, *, sort: str = "name", desc: bool = False) -> Query:
    """Parse the filter language; raises UsageError naming the bad term."""
    kw: dict = {"targets": [], "tags": [], "flags": [], "no_flags": []}
    words: list[str] = []
    fits = None
    for token in _tokens(text or ""):
        key, sep, value = token.partition(":")
        canonical = KEYS.get(key.lower()) if sep else None
        if sep and canonical is None and key.isalpha():
            raise UsageError(f"unknown filter key {key!r} in {token!r}", None,
                             "keys: base: r: alpha: target: tag: flag: -flag: fits: (plain words match names, "
                             "descriptions and targets)")
        if canonical is None:
            words.append(token)
            continue
        value = value.strip()
        if not value:
            continue  # still being typed
        if canonical == "base":
            kw["base"] = value
        elif canonical == "r":
            kw["rank"] = _number("r", value, int)
        elif canonical == "alpha":
            kw["alpha"] = _number("alpha", value, float)
        elif canonical == "fits":
            fits = value
        else:
            for part in (p for p in value.split(",") if p):
                if canonical in ("flag", "-flag"):
                    flag = _FLAG_ALIASES.get(part.lower())
                    if flag is None:
                        raise UsageError(f"unknown flag {part!r}", None, f"flags: {', '.join(FLAGS)}")
                    kw["flags" if canonical == "flag" else "no_flags"].append(flag)
                else:
                    kw["targets" if canonical == "target" else "tags"].append(part)
    flt = ListFilter(base=kw.get("base"), rank=kw.get("rank"), alpha=kw.get("alpha"),
                     targets=tuple(dict.fromkeys(kw["targets"])), tags=tuple(dict.fromkeys(kw["tags"])),
                     flags=tuple(dict.fromkeys(kw["flags"])), no_flags=tuple(dict.fromkeys(kw["no_flags"])),
                     search=" ".join(words) or None, sort=sort, desc=desc)
    highlights = {"name": tuple(words), "targets": tuple(words) + flt.targets, "tags": flt.tags,
                  "base": (flt.base,) if flt.base else ()}
    return Query(flt, fits, tuple(words), highlights)


def merge_filter_options(query: Query, *, base=None, rank=None, alpha=None, targets=(), tags=(), flags=(),
                         no_flags=(), search=None, fits=None, limit=None, all_versions=False,
                         base_id=None) -> ListFilter:
    """`hub list QUERY --base … --tag …`: the options are the same filter spelled as flags;
    both apply (lists add up, an option's single value replaces the query's)."""
    f = query.filter
    words = " ".join(w for w in (f.search, search) if w) or None
    merged = replace(
        f, base=base if base is not None else f.base, rank=rank if rank is not None else f.rank,
        alpha=alpha if alpha is not None else f.alpha, targets=tuple(dict.fromkeys((*f.targets, *targets))),
        tags=tuple(dict.fromkeys((*f.tags, *tags))), flags=tuple(dict.fromkeys((*f.flags, *flags))),
        no_flags=tuple(dict.fromkeys((*f.no_flags, *no_flags))), search=words, limit=limit,
        all_versions=all_versions)
    return replace(query, filter=merged, fits=fits or query.fits).to_filter(base_id)


def format_query(flt: ListFilter, fits: str | None = None) -> str:
    """The query text for a filter (the inverse of parse_query, for `--base …` style flags)."""
    parts = list(search_words(flt.search))
    if flt.base:
        parts.append(f"base:{shlex.quote(flt.base)}")
    if flt.rank is not None:
        parts.append(f"r:{flt.rank}")
    if flt.alpha is not None:
        parts.append(f"alpha:{flt.alpha:g}")
    parts += [f"target:{t}" for t in flt.targets] + [f"tag:{t}" for t in flt.tags]
    parts += [f"flag:{f}" for f in flt.flags] + [f"-flag:{f}" for f in flt.no_flags]
    if fits:
        parts.append(f"fits:{fits}")
    return " ".join(parts)


__all__ = ["KEYS", "Query", "format_query", "merge_filter_options", "parse_query"]
