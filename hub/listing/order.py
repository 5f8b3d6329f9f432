"""Sort orders of the browse index (hub.listing.index) as numpy argsorts.

numpy sorts without holding the GIL, so a keystroke's query is not stalled behind an order
computed ahead (a list.sort of 100,000 keys held it for up to 165 ms)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

from hub.listing.rows import FLAG_ORDER


def sort_value(key: str):
    """A function giving an entry's sort value (None for SQL's NULL); numeric_keys turns
    the values into numbers."""
    flag_bits = {f: 1 << i for i, f in enumerate(FLAG_ORDER)}
    return {
        "name": lambda e: e.name,
        "base": lambda e: e.base_name if e.base_name is not None else e.base_model,
        "r": lambda e: e.r,
        "alpha": lambda e: e.alpha,
        "targets": lambda e: ",".join(e.targets),
        "flags": lambda e: sum(flag_bits[f] for f in e.flags),
        "size": lambda e: e.size_bytes,
        "tags": lambda e: e.tags[0] if e.tags else None,
        "created": lambda e: e.created,
        "params": lambda e: e.params,
    }[key]


_INT_NULL = -(2 ** 62)      # below every stored integer; still negatable in int64


def numeric_keys(sort: str, values: list):
    """Sort values as one numeric numpy array (strings by their rank among the distinct
    values), so that an order is one argsort. NULL is lowest, as SQL's NULLS FIRST ascending."""
    import numpy as np

    if sort == "alpha":
        return np.array([float("-inf") if v is None else v for v in values], dtype=np.float64)
    if sort == "created" and all(v is None or isinstance(v, datetime) for v in values):
        return np.array([_INT_NULL if v is None else _microseconds(v) for v in values], dtype=np.int64)
    if sort in ("r", "flags", "size", "params"):
        return np.array([_INT_NULL if v is None else v for v in values], dtype=np.int64)
    # strings (few distinct values): their ranks
    rank = {v: n for n, v in enumerate(sorted({v for v in values if v is not None}))}
    rank[None] = -1
    return np.array([rank[v] for v in values], dtype=np.int64)


def positions(order: list[int], size: int) -> list[int]:
    """The inverse of ``order``: each entry's position in it (0 for entries not in it)."""
    import numpy as np

    place = np.zeros(size, dtype=np.int64)
    place[np.asarray(order, dtype=np.int64)] = np.arange(len(order), dtype=np.int64)
    return place.tolist()


def _microseconds(when: datetime) -> int:
    epoch = _EPOCH if when.tzinfo is None else _EPOCH.replace(tzinfo=timezone.utc)
    return (when - epoch) // _MICROSECOND


_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)


def sorted_by(keys, by_name: list[int], desc: bool) -> list[int]:
    """``by_name`` ordered by ``keys``; ties stay in name order in both directions (as SQL's
    ", name ASC"), which a stable sort of the negated keys gives descending."""
    import numpy as np

    live = np.asarray(by_name, dtype=np.int64)
    wanted = keys[live]
    picked = np.argsort(-wanted if desc else wanted, kind="stable")
    return live[picked].tolist()


def ordered(sort: str, desc: bool, by_name: list[int], keys) -> list[int]:
    """The entries in ``sort`` order, from the name order (``keys`` unused for "name")."""
    if sort == "name":
        return by_name[::-1] if desc else by_name
    return sorted_by(keys, by_name, desc)


def entry_keys(sort: str, entries: list) -> "np.ndarray":
    """numeric_keys of the entries (None for a dropped one), indexed like them."""
    value = sort_value(sort)
    return numeric_keys(sort, [None if e is None else value(e) for e in entries])
