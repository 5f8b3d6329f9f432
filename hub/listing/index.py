"""An in-memory index of the adapter browser's columns, for typing-speed filters. No SQL:
hub.registry.browse loads its entries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub.listing.filters import ListFilter, search_words
from hub.listing.order import entry_keys, ordered, positions
from hub.listing.rows import BROWSE_SORTS, PENDING_SOURCE, AdapterRow

# -- an in-memory index for typing-speed filters ---------------------------------------------
#
# On a real registry each adapters row carries tens of kB of JSON (per-module maps, configs),
# so every SQL filter that cannot use an index reads the whole table: 0.1-1 s per keystroke
# at 100,000 adapters (EXISTS on targets/tags costs one lookup per row). The browser therefore
# loads what it filters and sorts on once, in the background, and answers from memory. The
# load reads only compact data: the listing columns (which SQLite serves from the covering
# index ix_adapters_listing), adapter_targets, adapter_tags and base_models. The Source
# column lives after the JSON in each row, so it is read per page, for the rows shown.
# Matching follows list_query exactly (a test compares both on the same registries): LIKE
# is SQLite's (substring, ASCII case-insensitive), '=' exact, NULLs first ascending and last
# descending, ties by name.

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(text: str | None) -> str:
    # str.lower is SQLite's ASCII folding on ASCII text, and ten times faster than translate
    if not text:
        return ""
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def search_text(name: str, description: str | None, targets: tuple[str, ...]) -> str:
    """What plain words are matched against: folded name, description and targets."""
    return "\0".join((fold(name), fold(description), *map(fold, targets)))


@dataclass
class Entry:
    id: int
    name: str
    base_model: str | None
    base_name: str | None
    r: int
    alpha: float
    targets: tuple[str, ...]
    flags: tuple[str, ...]
    size_bytes: int
    tags: tuple[str, ...]
    created: object
    params: int
    search: str                 # folded name, description and targets, NUL-separated

    def row(self, source: str) -> AdapterRow:
        return AdapterRow(self.name, self.base_name or self.base_model or "", self.r, self.alpha, self.targets,
                          self.flags, self.size_bytes, self.tags, source)


def _containing(groups: dict[str, set[int]], needle: str) -> set[int]:
    """Entries under every key that holds ``needle`` (ASCII case folded): substring matching
    over the few distinct targets or tags, not over every adapter."""
    folded = fold(needle)
    out: set[int] = set()
    for key, members in groups.items():
        if folded in fold(key):
            out |= members
    return out


class BrowseIndex:
    """The browser's columns of every adapter, in memory; same answers as the SQL methods.

    ``load_sources(ids) -> {id: label}`` fills the Source column for the rows a page shows.

    An index being loaded (``complete`` False) holds a prefix of the adapters in name order,
    so it already answers exactly what depends on that prefix only: for the name order, the
    first matches and their positions (``has_page``); its counts are lower bounds."""

    SORTS = frozenset(BROWSE_SORTS) - {"source"}   # source labels are not all in memory

    def __init__(self, entries: list[Entry], load_sources, complete: bool = True):
        import threading

        self.complete = complete
        self._in_name_order = True   # only appended in name order so far: positions are the name order
        self._lock = threading.RLock()
        self._load_sources = load_sources
        self._sources: dict[int, str] = {}
        self._entries: list[Entry | None] = []
        self._search: list[str | None] = []      # parallel to _entries: tight loops for LIKE
        self._by_name: dict[str, int] = {}
        self._by_target: dict[str, set[int]] = {}
        self._by_tag: dict[str, set[int]] = {}
        self._by_rank: dict[int, set[int]] = {}
        self._by_base: dict[tuple[str | None, str | None], set[int]] = {}   # few distinct bases
        self._orders: dict[tuple, Any] = {}     # orders, positions and sort keys, by kind and sort
        self._matches: dict[tuple, list[int]] = {}
        self._version = 0          # bumped by every change, so that work done on a snapshot can tell
        for e in entries:
            self._add(e)
        self._in_name_order = not entries   # then only extend() appends, in name order
        self._loaded_upto: str | None = None

    def __len__(self) -> int:
        return len(self._by_name)

    # -- upkeep ---------------------------------------------------------------------------

    def _add(self, e: Entry) -> None:
        i = len(self._entries)
        self._entries.append(e)
        self._search.append(e.search)
        self._by_name[e.name] = i
        for t in set(e.targets):
            self._by_target.setdefault(t, set()).add(i)
        for t in e.tags:
            self._by_tag.setdefault(t, set()).add(i)
        self._by_rank.setdefault(e.r, set()).add(i)
        self._by_base.setdefault((e.base_model, e.base_name), set()).add(i)

    def _drop(self, name: str) -> None:
        i = self._by_name.pop(name, None)
        if i is None:
            return
        e = self._entries[i]
        self._entries[i] = None
        self._search[i] = None
        self._sources.pop(e.id, None)
        for t in set(e.targets):
            self._by_target[t].discard(i)
        for t in e.tags:
            self._by_tag[t].discard(i)
        self._by_rank[e.r].discard(i)
        self._by_base[(e.base_model, e.base_name)].discard(i)

    EXTEND_BATCH = 2_000   # entries added per hold of the lock: a keystroke's query waits for one batch at most

    def extend(self, entries: list[Entry], between=None) -> None:
        """Append the next adapters in name order (loading). Between batches the index is a
        name-order prefix, as after a whole chunk, so queries may run in between (and
        ``between()`` too)."""
        for start in range(0, len(entries), self.EXTEND_BATCH):
            if start and between is not None:
                between()
            batch = entries[start:start + self.EXTEND_BATCH]
            with self._lock:
                first = len(self._entries)
                by_name = self._orders.get(("name", False)) if self._in_name_order else None
                for e in batch:
                    if e.name in self._by_name:
                        self._drop(e.name)     # changed from the TUI while loading
                        by_name = None         # its old position is a hole now
                    self._add(e)
                self._loaded_upto = batch[-1].name
                self._orders.clear()
                self._matches.clear()
                self._version += 1
                if by_name is not None:
                    # appended in name order: the name order grows by the new positions (a new
                    # list: a snapshot taken for work outside the lock may still read the old one)
                    self._orders[("name", False)] = by_name + list(range(first, len(self._entries)))

    def finish(self) -> None:
        with self._lock:
            self.complete = True

    def replace(self, removed: list[str], fresh: list[Entry]) -> None:
        with self._lock:
            self._in_name_order = False
            if not self.complete:
                # keep a loading index a name-order prefix: later names come with their chunk
                upto = self._loaded_upto
                fresh = [e for e in fresh if upto is not None and e.name <= upto]
            for name in removed:
                self._drop(name)
            for e in fresh:
                self._drop(e.name)
                self._add(e)
            self._orders.clear()
            self._matches.clear()
            self._version += 1

    # -- answering ------------------------------------------------------------------------

    def supports(self, flt: ListFilter) -> bool:
        return flt.fits is None and flt.sort in self.SORTS and (self.complete or (flt.sort == "name" and not flt.desc))

    def has_page(self, flt: ListFilter) -> bool:
        """Whether this page of ``flt`` is exact already (always, once complete)."""
        if self.complete:
            return True
        if flt.limit is None or not self.supports(flt):
            return False
        with self._lock:
            return flt.offset + flt.limit <= len(self._match(flt))

    def _order(self, sort: str, desc: bool) -> list[int]:
        key = (sort, desc)
        if key not in self._orders:
            entries = self._entries
            by_name = self._orders.get(("name", False))
            if by_name is None:
                if self._in_name_order:
                    by_name = [i for i, e in enumerate(entries) if e is not None]
                else:
                    by_name = sorted(self._by_name.values(), key=lambda i: entries[i].name)
                self._orders[("name", False)] = by_name
            self._orders[key] = ordered(sort, desc, by_name, None if sort == "name" else self._keys(sort))
        return self._orders[key]

    def _keys(self, sort: str):
        """Every entry's sort value as a number, indexed like the entries (NULL lowest)."""
        cache = ("keys", sort)
        if cache not in self._orders:
            self._orders[cache] = entry_keys(sort, self._entries)
        return self._orders[cache]

    def prepare_keys(self, between=None) -> None:
        """Every sort's keys, computed once loaded (in the loader's thread, outside the lock),
        so that a first sort is one argsort: the dates alone cost 50 ms of Python. ``between()``
        runs before each sort's keys."""
        for sort in sorted(self.SORTS - {"name"}):
            if between is not None:
                between()
            with self._lock:
                if ("keys", sort) in self._orders:
                    continue
                version, entries = self._version, list(self._entries)
            keys = entry_keys(sort, entries)
            with self._lock:
                if self._version == version:
                    self._orders[("keys", sort)] = keys

    def warm_next(self) -> bool:
        """Compute one sort order not computed yet, with its positions (the browser does it
        while the user is idle: a re-sort is then a page read); False when every order is there.

        The work runs outside the lock, on a snapshot, so that a keystroke's query never waits
        for it; a snapshot that an edit made stale meanwhile is dropped."""
        with self._lock:
            todo = next(((sort, desc) for sort in sorted(self.SORTS) for desc in (False, True)
                         if ("place", sort, desc) not in self._orders), None)
            if todo is None:
                return False
            sort, desc = todo
            version, by_name = self._version, self._order("name", False)
            entries, keys = list(self._entries), self._orders.get(("keys", sort))
        if sort != "name" and keys is None:
            keys = entry_keys(sort, entries)
        order = ordered(sort, desc, by_name, keys)
        place = positions(order, len(entries))
        with self._lock:
            if self._version == version:
                if keys is not None:
                    self._orders[("keys", sort)] = keys
                self._orders[(sort, desc)] = order
                self._orders[("place", sort, desc)] = place
        return True

    @staticmethod
    def _key(flt: ListFilter) -> tuple:
        return (flt.base, flt.rank, flt.alpha, tuple(flt.targets), tuple(flt.tags), tuple(flt.flags),
                tuple(flt.no_flags), flt.sort, flt.desc, flt.search)

    def _match(self, flt: ListFilter) -> list[int]:
        """Positions of the matching entries, in the filter's order."""
        key = self._key(flt)
        hit = self._matches.get(key)
        if hit is not None:
            return hit
        picked = self._refine(key, flt)
        if picked is None:
            picked = self._match_all(flt)
        if len(self._matches) > 32:
            self._matches.clear()
        self._matches[key] = picked
        self._last_key = key
        return picked

    def _refine(self, key: tuple, flt: ListFilter) -> list[int] | None:
        """Typing narrows: when every earlier search word lies inside some new word (all else
        equal), the new matches are a subset of the earlier ones, in the same order."""
        last = getattr(self, "_last_key", None)
        if not flt.search or last is None or last[:-1] != key[:-1] or not last[-1]:
            return None
        new_words = [fold(w) for w in search_words(flt.search)]
        old_words = [fold(w) for w in search_words(last[-1])]
        previous = self._matches.get(last)
        if previous is None or not all(any(o in n for n in new_words) for o in old_words):
            return None
        search = self._search
        if len(new_words) == 1:
            needle = new_words[0]     # the common case: no generator per entry
            return [i for i in previous if needle in search[i]]
        return [i for i in previous if all(w in search[i] for w in new_words)]

    def _match_all(self, flt: ListFilter) -> list[int]:
        entries, total = self._entries, len(self._by_name)
        ids: set[int] | None = None

        def narrow(found: set[int]) -> None:
            nonlocal ids
            ids = set(found) if ids is None else ids & found

        if flt.rank is not None:
            narrow(self._by_rank.get(flt.rank, set()))
        for t in flt.targets:
            narrow(_containing(self._by_target, t))
        for t in flt.tags:
            narrow(_containing(self._by_tag, t))

        def keep(test) -> None:
            # a tight comprehension over the candidates (or everything live)
            nonlocal ids
            pool = ids if ids is not None else self._by_name.values()
            ids = {i for i in pool if test(i)}

        if flt.base:
            b, folded = flt.base, fold(flt.base)
            narrow(set().union(*(members for (model, named), members in self._by_base.items()
                                 if (model is not None and folded in fold(model)) or b in (model, named))))
        words = [fold(w) for w in search_words(flt.search)] if flt.search else []
        only_words = ids is None and words and flt.alpha is None and not flt.flags and not flt.no_flags
        if only_words:
            # one pass in the wanted order: no set, no second walk
            search, order = self._search, self._order(flt.sort, flt.desc)
            if len(words) == 1:
                needle = words[0]
                return [i for i in order if needle in search[i]]
            return [i for i in order if all(w in search[i] for w in words)]
        if words:
            search = self._search
            keep(lambda i: all(w in search[i] for w in words))
        if flt.alpha is not None:
            keep(lambda i: entries[i].alpha == flt.alpha)
        for flag in flt.flags:
            keep(lambda i, f=flag: f in entries[i].flags)
        for flag in flt.no_flags:
            keep(lambda i, f=flag: f not in entries[i].flags)

        if ids is not None and self._in_name_order and flt.sort == "name" and not flt.desc:
            return sorted(ids)     # positions are the name order (loading): no order or places needed
        order = self._order(flt.sort, flt.desc)
        if ids is None:
            return order
        if len(ids) * 8 < total:
            # few matches: sort them by their place in the order instead of walking it
            return sorted(ids, key=self._place(flt.sort, flt.desc).__getitem__)
        return [i for i in order if i in ids]

    def _place(self, sort: str, desc: bool) -> list[int]:
        """Each entry's position in this order, indexed like the entries (live entries only)."""
        key = ("place", sort, desc)
        if key not in self._orders:
            self._orders[key] = positions(self._order(sort, desc), len(self._entries))
        return self._orders[key]

    def count_matching(self, flt: ListFilter | None = None) -> int:
        with self._lock:
            return len(self._match(flt or ListFilter()))

    def list_rows(self, flt: ListFilter | None = None, sources: bool = True) -> list[AdapterRow]:
        """A page; with ``sources=False`` Source labels not read yet are PENDING_SOURCE
        (reading them costs a walk through each row's JSON: see fill_sources)."""
        flt = flt or ListFilter()
        with self._lock:
            picked = self._match(flt)
            end = None if flt.limit is None else flt.offset + flt.limit
            page = [self._entries[i] for i in picked[flt.offset:end]]
        if sources:
            self.fill_sources([e.name for e in page])
        known = self._sources
        return [e.row(known.get(e.id, PENDING_SOURCE)) for e in page]

    def fill_sources(self, names) -> dict[str, str]:
        """Source labels of ``names``, reading the ones not known yet."""
        with self._lock:
            entries = [self._entries[self._by_name[n]] for n in names if n in self._by_name]
        missing = [e.id for e in entries if e.id not in self._sources]
        if missing:
            labels = self._load_sources(missing)
            with self._lock:
                self._sources.update(labels)
        return {e.name: self._sources.get(e.id, "-") for e in entries}

    def position_of(self, name: str, flt: ListFilter | None = None) -> int | None:
        with self._lock:
            i = self._by_name.get(name)
            if i is None:
                return None
            flt = flt or ListFilter()
            if not self.supports(flt):
                return None
            place = self._place(flt.sort, flt.desc) if not self._filtered(flt) else None
            if place is not None:
                return place[i]
            picked = self._match(flt)
            try:
                return picked.index(i)
            except ValueError:
                return None

    @staticmethod
    def _filtered(flt: ListFilter) -> bool:
        return any((flt.base, flt.rank is not None, flt.alpha is not None, flt.targets, flt.tags, flt.flags,
                    flt.no_flags, flt.search))
