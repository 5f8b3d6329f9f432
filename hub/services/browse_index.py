"""An in-memory index of the adapter browser's columns, for typing-speed filters."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from hub.registry import adapters as q
from hub.registry.adapters import ListFilter
from hub.registry.filters import search_words
from hub.registry.schema import adapter_tags, adapter_targets, adapters, base_models
from hub.services.browse_rows import (
    _FLAG_ORDER, _SOURCE_COLUMNS, BROWSE_SORTS, PENDING_SOURCE, AdapterRow, _source_label,
)

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
_INDEX_COLUMNS = (
    adapters.c.id, adapters.c.name, adapters.c.base_model, adapters.c.base_id, adapters.c.r, adapters.c.lora_alpha,
    adapters.c.size_bytes, adapters.c.created_at, adapters.c.description,
    *(q.FLAG_COLUMNS[flag].label(f"flag_{flag}") for flag in _FLAG_ORDER), adapters.c.param_count,
)


def _fold(text: str | None) -> str:
    return (text or "").translate(_ASCII_LOWER)


@dataclass
class _Entry:
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
    folded = _fold(needle)
    out: set[int] = set()
    for key, members in groups.items():
        if folded in _fold(key):
            out |= members
    return out


def _sort_key(key: str):
    def nullable(v):
        return (v is not None, v if v is not None else 0)

    flag_bits = {f: 1 << i for i, f in enumerate(_FLAG_ORDER)}
    return {
        "name": lambda e: e.name,
        "base": lambda e: nullable(e.base_name if e.base_name is not None else e.base_model),
        "r": lambda e: e.r,
        "alpha": lambda e: e.alpha,
        "targets": lambda e: ",".join(e.targets),
        "flags": lambda e: sum(flag_bits[f] for f in e.flags),
        "size": lambda e: e.size_bytes,
        "tags": lambda e: nullable(e.tags[0] if e.tags else None),
        "created": lambda e: nullable(e.created),
        "params": lambda e: e.params,
    }[key]


class BrowseIndex:
    """The browser's columns of every adapter, in memory; same answers as the SQL methods.

    ``load_sources(ids) -> {id: label}`` fills the Source column for the rows a page shows."""

    SORTS = frozenset(BROWSE_SORTS) - {"source"}   # source labels are not all in memory

    def __init__(self, entries: list[_Entry], load_sources):
        import threading

        self._lock = threading.RLock()
        self._load_sources = load_sources
        self._sources: dict[int, str] = {}
        self._entries: list[_Entry | None] = []
        self._search: list[str | None] = []      # parallel to _entries: tight loops for LIKE
        self._base_fold: list[str | None] = []
        self._by_name: dict[str, int] = {}
        self._by_target: dict[str, set[int]] = {}
        self._by_tag: dict[str, set[int]] = {}
        self._by_rank: dict[int, set[int]] = {}
        self._orders: dict[tuple[str, bool], list[int]] = {}
        self._matches: dict[tuple, list[int]] = {}
        for e in entries:
            self._add(e)

    def __len__(self) -> int:
        return len(self._by_name)

    # -- upkeep ---------------------------------------------------------------------------

    def _add(self, e: _Entry) -> None:
        i = len(self._entries)
        self._entries.append(e)
        self._search.append(e.search)
        self._base_fold.append(None if e.base_model is None else _fold(e.base_model))
        self._by_name[e.name] = i
        for t in set(e.targets):
            self._by_target.setdefault(t, set()).add(i)
        for t in e.tags:
            self._by_tag.setdefault(t, set()).add(i)
        self._by_rank.setdefault(e.r, set()).add(i)

    def _drop(self, name: str) -> None:
        i = self._by_name.pop(name, None)
        if i is None:
            return
        e = self._entries[i]
        self._entries[i] = None
        self._search[i] = self._base_fold[i] = None
        self._sources.pop(e.id, None)
        for t in set(e.targets):
            self._by_target[t].discard(i)
        for t in e.tags:
            self._by_tag[t].discard(i)
        self._by_rank[e.r].discard(i)

    def replace(self, removed: list[str], fresh: list[_Entry]) -> None:
        with self._lock:
            for name in removed:
                self._drop(name)
            for e in fresh:
                self._drop(e.name)
                self._add(e)
            self._orders.clear()
            self._matches.clear()

    # -- answering ------------------------------------------------------------------------

    @classmethod
    def supports(cls, flt: ListFilter) -> bool:
        return flt.fits is None and flt.sort in cls.SORTS

    def _order(self, sort: str, desc: bool) -> list[int]:
        key = (sort, desc)
        if key not in self._orders:
            entries = self._entries
            by_name = self._orders.get(("name", False)) or sorted(self._by_name.values(),
                                                                  key=lambda i: entries[i].name)
            if sort == "name":
                order = list(reversed(by_name)) if desc else by_name
            else:
                keyf = _sort_key(sort)
                # stable sorts: ties stay in name order, ascending, in both directions (as SQL's ", name ASC")
                order = sorted(by_name, key=lambda i: keyf(entries[i]), reverse=desc)
            self._orders[key] = order
        return self._orders[key]

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
        new_words = [_fold(w) for w in search_words(flt.search)]
        old_words = [_fold(w) for w in search_words(last[-1])]
        previous = self._matches.get(last)
        if previous is None or not all(any(o in n for n in new_words) for o in old_words):
            return None
        search = self._search
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

        if flt.search:
            words, search = [_fold(w) for w in search_words(flt.search)], self._search
            if len(words) == 1:
                needle = words[0]
                keep(lambda i: needle in search[i])
            else:
                keep(lambda i: all(w in search[i] for w in words))
        if flt.base:
            b, folded, bases = flt.base, _fold(flt.base), self._base_fold
            keep(lambda i: (bases[i] is not None and folded in bases[i]) or entries[i].base_model == b
                 or entries[i].base_name == b)
        if flt.alpha is not None:
            keep(lambda i: entries[i].alpha == flt.alpha)
        for flag in flt.flags:
            keep(lambda i, f=flag: f in entries[i].flags)
        for flag in flt.no_flags:
            keep(lambda i, f=flag: f not in entries[i].flags)

        order = self._order(flt.sort, flt.desc)
        if ids is None:
            return order
        if len(ids) * 8 < total:
            # few matches: sort them by their place in the order instead of walking it
            return sorted(ids, key=self._place(flt.sort, flt.desc).__getitem__)
        return [i for i in order if i in ids]

    def _place(self, sort: str, desc: bool) -> dict[int, int]:
        key = ("place", sort, desc)
        if key not in self._orders:
            self._orders[key] = {i: n for n, i in enumerate(self._order(sort, desc))}
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
                return place.get(i)
            picked = self._match(flt)
            try:
                return picked.index(i)
            except ValueError:
                return None

    @staticmethod
    def _filtered(flt: ListFilter) -> bool:
        return any((flt.base, flt.rank is not None, flt.alpha is not None, flt.targets, flt.tags, flt.flags,
                    flt.no_flags, flt.search))


def _grouped(conn, table, column, ids=None) -> dict[int, tuple[str, ...]]:
    """{adapter id: sorted values} from a (adapter_id, value) table, one row per adapter."""
    stmt = select(table.c.adapter_id, func.aggregate_strings(column, "\x1f")).group_by(table.c.adapter_id)
    out: dict[int, tuple[str, ...]] = {}
    chunks = [None] if ids is None else [ids[i:i + 900] for i in range(0, len(ids), 900)]
    for chunk in chunks:
        part = stmt if chunk is None else stmt.where(table.c.adapter_id.in_(chunk))
        for aid, joined in conn.execute(part).all():
            out[aid] = tuple(sorted(joined.split("\x1f")))
    return out


def _index_entries(conn, where=None) -> list[_Entry]:
    stmt = select(*_INDEX_COLUMNS).where(adapters.c.latest.is_(True))  # one entry per name: its latest version
    if where is not None:
        stmt = stmt.where(where)
    rows = conn.execute(stmt).all()
    bases = dict(conn.execute(select(base_models.c.id, base_models.c.name)).all())
    ids = None if where is None else [r[0] for r in rows]
    targets = _grouped(conn, adapter_targets, adapter_targets.c.target, ids)
    tags = _grouped(conn, adapter_tags, adapter_tags.c.tag, ids)
    flag_at = [(f, 9 + n) for n, f in enumerate(_FLAG_ORDER)]
    none: tuple[str, ...] = ()
    out = []
    for r in rows:
        # positions follow _INDEX_COLUMNS
        aid, name, base_model, base_id, rank, alpha, size, created, description = r[:9]
        out.append(_Entry(
            id=aid, name=name, base_model=base_model, base_name=bases.get(base_id), r=rank, alpha=alpha,
            targets=targets.get(aid, none), flags=tuple(f for f, at in flag_at if r[at]), size_bytes=size,
            tags=tags.get(aid, none), created=created, params=r[9 + len(_FLAG_ORDER)],
            search="\0".join((_fold(name), _fold(description), *map(_fold, targets.get(aid, none))))))
    return out


class _BrowseIndexMethods:
    def browse_index(self) -> BrowseIndex:
        """Load the browser's in-memory index (one pass over compact data)."""
        with self.db.read() as conn:
            entries = _index_entries(conn)
        return BrowseIndex(entries, self._source_labels)

    def _source_labels(self, ids) -> dict[int, str]:
        out = {}
        with self.db.read() as conn:
            for start in range(0, len(ids), 900):
                for r in conn.execute(select(*_SOURCE_COLUMNS).where(adapters.c.id.in_(ids[start:start + 900]))):
                    out[r.id] = _source_label(r._mapping)
        return out

    def refresh_browse_index(self, index: BrowseIndex, names) -> None:
        """Bring ``names`` (changed, added, renamed away or removed) up to date in ``index``."""
        names = [n for n in dict.fromkeys(names) if n]
        if not names:
            return
        with self.db.read() as conn:
            fresh = _index_entries(conn, adapters.c.name.in_(names))
        kept = {e.name for e in fresh}
        index.replace([n for n in names if n not in kept], fresh)
