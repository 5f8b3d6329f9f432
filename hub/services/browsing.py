"""Cheap paged queries for front-ends that show large registries (the TUI's table).

``Hub.list`` builds full records (JSON columns parsed, every row); a table that
shows 60 rows of 100,000 needs one page of a few columns and a count. These
reuse ``hub.registry.adapters.list_query`` for the filter, so the TUI and
``hub list`` agree on what a filter matches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from sqlalchemy import and_, case, func, select

from hub.registry import adapters as q
from hub.registry.adapters import ListFilter
from hub.registry.schema import adapter_tags, adapters, base_models, lineage

_FLAG_ORDER = ("rslora", "dora", "embed", "mts", "bias", "fifo")


def _flag_rank():
    # rows sort by which flags they carry (as a bit pattern), portable to PostgreSQL booleans
    total = None
    for bit, flag in enumerate(_FLAG_ORDER):
        term = case((q.FLAG_COLUMNS[flag].is_(True), 1 << bit), else_=0)
        total = term if total is None else total + term
    return total


def _first_tag():
    return (select(func.min(adapter_tags.c.tag)).where(adapter_tags.c.adapter_id == adapters.c.id)
            .scalar_subquery())


# Every column the browser shows can be sorted on.
BROWSE_SORTS = {
    "name": lambda: (adapters.c.name,),
    "base": lambda: (func.coalesce(base_models.c.name, adapters.c.base_model),),
    "r": lambda: (adapters.c.r,),
    "alpha": lambda: (adapters.c.lora_alpha,),
    "targets": lambda: (adapters.c.target_modules,),
    "flags": lambda: (_flag_rank(),),
    "size": lambda: (adapters.c.size_bytes,),
    "tags": lambda: (_first_tag(),),
    "source": lambda: (adapters.c.source_kind, func.coalesce(adapters.c.source_repo, adapters.c.source_path)),
    "created": lambda: (adapters.c.created_at,),
}

_ROW_COLUMNS = (
    adapters.c.id, adapters.c.name, adapters.c.base_model, base_models.c.name.label("base_name"), adapters.c.r,
    adapters.c.lora_alpha, adapters.c.target_modules, adapters.c.size_bytes, adapters.c.source_kind,
    adapters.c.source_repo, adapters.c.source_revision, adapters.c.source_path,
    *(col.label(f"flag_{flag}") for flag, col in q.FLAG_COLUMNS.items()),
)


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


def _source_label(m) -> str:
    if m["source_repo"]:
        rev = m["source_revision"]
        return f"hf:{m['source_repo']}" + (f"@{rev}" if rev and rev != "main" else "")
    if m["source_kind"] == "local" and m["source_path"]:
        return os.path.basename(m["source_path"].rstrip("/"))
    return m["source_kind"] or "-"


class _PagedQueries:
    """SQL answers, always current (the index below is a snapshot kept in step by the browser)."""

    def _browse_query(self, flt: ListFilter):
        # list_query only knows a few sort keys; filter with it, then order our way
        base = replace(flt, sort="name", desc=False, limit=None, offset=0)
        return q.list_query(base).order_by(None)

    def list_rows(self, flt: ListFilter | None = None) -> list[AdapterRow]:
        """One page of browser rows: ``flt`` filters; ``sort`` may be any BROWSE_SORTS key;
        ``limit``/``offset`` page."""
        flt = flt or ListFilter()
        if flt.sort not in BROWSE_SORTS:
            from hub.errors import UsageError

            raise UsageError(f"cannot sort by {flt.sort!r}", None, f"use one of {', '.join(BROWSE_SORTS)}")
        keys = BROWSE_SORTS[flt.sort]()
        order = [k.desc() if flt.desc else k.asc() for k in keys]
        stmt = self._browse_query(flt).with_only_columns(*_ROW_COLUMNS, maintain_column_froms=False)
        stmt = stmt.order_by(*order, adapters.c.name.asc())
        if flt.limit is not None:
            stmt = stmt.limit(flt.limit)
        if flt.offset:
            stmt = stmt.offset(flt.offset)
        with self.db.read() as conn:
            rows = conn.execute(stmt).all()
            tags = q.tags_for(conn, [r.id for r in rows])
        out = []
        for row in rows:
            m = row._mapping
            out.append(AdapterRow(
                name=m["name"], base=m["base_name"] or m["base_model"] or "", r=m["r"], alpha=m["lora_alpha"],
                targets=tuple(t for t in m["target_modules"].split(",") if t),
                flags=tuple(f for f in _FLAG_ORDER if m[f"flag_{f}"]),
                size_bytes=m["size_bytes"], tags=tuple(sorted(tags.get(m["id"], ()))), source=_source_label(m)))
        return out

    def count_matching(self, flt: ListFilter | None = None) -> int:
        """How many adapters ``flt`` matches (limit/offset ignored)."""
        flt = flt or ListFilter()
        with self.db.read() as conn:
            if flt == replace(ListFilter(), sort=flt.sort, desc=flt.desc, limit=flt.limit, offset=flt.offset):
                return q.count(conn)
            stmt = self._browse_query(flt).with_only_columns(func.count(adapters.c.id),
                                                             maintain_column_froms=False)
            return conn.execute(stmt).scalar_one()

    def position_of(self, name: str, flt: ListFilter | None = None) -> int | None:
        """Index of adapter ``name`` in the filtered, sorted list (None if filtered out):
        lets a browser keep its cursor on a row after a re-sort, rename or refresh."""
        flt = flt or ListFilter()
        inner = self._browse_query(flt)
        keys = BROWSE_SORTS[flt.sort]() if flt.sort in BROWSE_SORTS else (adapters.c.name,)
        order = [k.desc() if flt.desc else k.asc() for k in keys] + [adapters.c.name.asc()]
        numbered = inner.with_only_columns(
            adapters.c.name.label("n"), func.row_number().over(order_by=order).label("pos"),
            maintain_column_froms=False).subquery()
        with self.db.read() as conn:
            pos = conn.execute(select(numbered.c.pos).where(numbered.c.n == name)).scalar()
        return None if pos is None else pos - 1

    def children_of(self, name: str) -> list[dict]:
        """Adapters recorded as made from ``name`` (the other half of the lineage tree)."""
        with self.db.read() as conn:
            row = q.get_row(conn, name)
            if row is None:
                return []
            found = conn.execute(
                select(adapters.c.name, lineage.c.weight)
                .select_from(lineage.join(adapters, and_(lineage.c.child_type == "adapter",
                                                         lineage.c.child_id == adapters.c.id)))
                .where(and_(lineage.c.parent_type == "adapter", lineage.c.parent_id == row.id))
                .order_by(adapters.c.name)).all()
        return [{"name": n, "weight": w} for n, w in found]


# -- an in-memory index for typing-speed filters ---------------------------------------------
#
# On a real registry each adapters row carries tens of kB of JSON (per-module maps, configs),
# so every SQL filter that cannot use an index reads the whole table: 0.1-1 s per keystroke
# at 100,000 adapters, whatever the query shape (EXISTS on targets/tags costs one lookup per
# row). The browser therefore loads the few columns it filters and sorts on once, in the
# background, and answers from memory. Matching follows list_query exactly (a test compares
# both on the same registries): LIKE is SQLite's (substring, ASCII case-insensitive), '=' is
# exact, NULLs sort first ascending and last descending, ties by name.

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_INDEX_COLUMNS = (
    adapters.c.id, adapters.c.name, adapters.c.base_model, base_models.c.name.label("base_name"), adapters.c.r,
    adapters.c.lora_alpha, adapters.c.target_modules, adapters.c.size_bytes, adapters.c.created_at,
    adapters.c.source_kind, adapters.c.source_repo, adapters.c.source_revision, adapters.c.source_path,
    adapters.c.description, *(col.label(f"flag_{flag}") for flag, col in q.FLAG_COLUMNS.items()),
)


def _fold(text: str | None) -> str:
    return (text or "").translate(_ASCII_LOWER)


@dataclass
class _Entry:
    row: AdapterRow
    base_model: str | None
    base_name: str | None
    search: str                 # folded name + NUL + folded description
    created: object
    source_kind: str | None
    source_ref: str | None
    flag_set: frozenset


def _entry(m, tags) -> _Entry:
    flags = tuple(f for f in _FLAG_ORDER if m[f"flag_{f}"])
    row = AdapterRow(
        name=m["name"], base=m["base_name"] or m["base_model"] or "", r=m["r"], alpha=m["lora_alpha"],
        targets=tuple(t for t in m["target_modules"].split(",") if t), flags=flags, size_bytes=m["size_bytes"],
        tags=tuple(sorted(tags)), source=_source_label(m))
    return _Entry(row, m["base_model"], m["base_name"], _fold(m["name"]) + "\0" + _fold(m["description"]),
                  m["created_at"], m["source_kind"], m["source_repo"] or m["source_path"], frozenset(flags))


def _sort_key(key: str):
    def nullable(v):
        return (v is not None, v if v is not None else 0)

    flag_bits = {f: 1 << i for i, f in enumerate(_FLAG_ORDER)}
    return {
        "name": lambda e: e.row.name,
        "base": lambda e: nullable(e.base_name if e.base_name is not None else e.base_model),
        "r": lambda e: e.row.r,
        "alpha": lambda e: e.row.alpha,
        "targets": lambda e: ",".join(e.row.targets),
        "flags": lambda e: sum(flag_bits[f] for f in e.flag_set),
        "size": lambda e: e.row.size_bytes,
        "tags": lambda e: nullable(e.row.tags[0] if e.row.tags else None),
        "source": lambda e: (nullable(e.source_kind), nullable(e.source_ref)),
        "created": lambda e: nullable(e.created),
    }[key]


class BrowseIndex:
    """The browser's columns of every adapter, in memory; same answers as the SQL methods."""

    def __init__(self, entries: list[_Entry]):
        import threading

        self._lock = threading.RLock()
        self._entries: list[_Entry | None] = []
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
        self._by_name[e.row.name] = i
        for t in set(e.row.targets):
            self._by_target.setdefault(t, set()).add(i)
        for t in e.row.tags:
            self._by_tag.setdefault(t, set()).add(i)
        self._by_rank.setdefault(e.row.r, set()).add(i)

    def _drop(self, name: str) -> None:
        i = self._by_name.pop(name, None)
        if i is None:
            return
        e = self._entries[i]
        self._entries[i] = None
        for t in set(e.row.targets):
            self._by_target[t].discard(i)
        for t in e.row.tags:
            self._by_tag[t].discard(i)
        self._by_rank[e.row.r].discard(i)

    def replace(self, removed: list[str], fresh: list[_Entry]) -> None:
        with self._lock:
            for name in removed:
                self._drop(name)
            for e in fresh:
                self._drop(e.row.name)
                self._add(e)
            self._orders.clear()
            self._matches.clear()

    # -- answering ------------------------------------------------------------------------

    @staticmethod
    def supports(flt: ListFilter) -> bool:
        return flt.fits is None and flt.sort in BROWSE_SORTS

    def _order(self, sort: str, desc: bool) -> list[int]:
        key = (sort, desc)
        if key not in self._orders:
            live = [i for i in self._by_name.values()]
            entries = self._entries
            by_name = sorted(live, key=lambda i: entries[i].row.name)
            if sort == "name":
                order = list(reversed(by_name)) if desc else by_name
            else:
                keyf = _sort_key(sort)
                # stable sorts: ties stay in name order, ascending, in both directions (as SQL's ", name ASC")
                order = sorted(by_name, key=lambda i: keyf(entries[i]), reverse=desc)
            self._orders[key] = order
        return self._orders[key]

    def _match(self, flt: ListFilter) -> list[int]:
        cache_key = (flt.base, flt.rank, flt.alpha, tuple(flt.targets), tuple(flt.tags), tuple(flt.flags),
                     tuple(flt.no_flags), flt.search, flt.sort, flt.desc)
        hit = self._matches.get(cache_key)
        if hit is not None:
            return hit
        entries = self._entries
        candidates: set[int] | None = None

        def narrow(ids: set[int]) -> None:
            nonlocal candidates
            candidates = set(ids) if candidates is None else candidates & ids

        if flt.rank is not None:
            narrow(self._by_rank.get(flt.rank, set()))
        for t in flt.targets:
            narrow(self._by_target.get(t, set()))
        for t in flt.tags:
            narrow(self._by_tag.get(t, set()))
        tests = []
        if flt.alpha is not None:
            tests.append(lambda e: e.row.alpha == flt.alpha)
        for flag in flt.flags:
            tests.append(lambda e, f=flag: f in e.flag_set)
        for flag in flt.no_flags:
            tests.append(lambda e, f=flag: f not in e.flag_set)
        if flt.base:
            folded = _fold(flt.base)
            tests.append(lambda e: e.base_model == flt.base or e.base_name == flt.base
                         or (e.base_model is not None and folded in _fold(e.base_model)))
        if flt.search:
            needle = _fold(flt.search)
            tests.append(lambda e: needle in e.search)
        order = self._order(flt.sort, flt.desc)
        if candidates is not None and len(candidates) * 8 < len(order):
            rank = {i: n for n, i in enumerate(order)} if len(candidates) > 2000 else None
            picked = sorted(candidates, key=rank.__getitem__) if rank else [i for i in order if i in candidates]
        elif candidates is not None:
            picked = [i for i in order if i in candidates]
        else:
            picked = order
        if tests:
            picked = [i for i in picked if all(t(entries[i]) for t in tests)]
        if len(self._matches) > 16:
            self._matches.clear()
        self._matches[cache_key] = picked
        return picked

    def count_matching(self, flt: ListFilter | None = None) -> int:
        with self._lock:
            return len(self._match(flt or ListFilter()))

    def list_rows(self, flt: ListFilter | None = None) -> list[AdapterRow]:
        flt = flt or ListFilter()
        with self._lock:
            picked = self._match(flt)
            end = None if flt.limit is None else flt.offset + flt.limit
            return [self._entries[i].row for i in picked[flt.offset:end]]

    def position_of(self, name: str, flt: ListFilter | None = None) -> int | None:
        with self._lock:
            i = self._by_name.get(name)
            if i is None:
                return None
            picked = self._match(flt or ListFilter())
            try:
                return picked.index(i)
            except ValueError:
                return None


def _index_entries(conn, where=None) -> list[_Entry]:
    stmt = select(*_INDEX_COLUMNS).select_from(
        adapters.outerjoin(base_models, adapters.c.base_id == base_models.c.id))
    if where is not None:
        stmt = stmt.where(where)
    rows = conn.execute(stmt).all()
    tags: dict[int, list[str]] = {}
    if where is None:
        for aid, tag in conn.execute(select(adapter_tags.c.adapter_id, adapter_tags.c.tag)):
            tags.setdefault(aid, []).append(tag)
    else:
        tags = q.tags_for(conn, [r.id for r in rows])
    return [_entry(r._mapping, tags.get(r.id, ())) for r in rows]


class _BrowseIndexMethods:
    def browse_index(self) -> BrowseIndex:
        """Load the browser's in-memory index (one pass over the registry)."""
        with self.db.read() as conn:
            return BrowseIndex(_index_entries(conn))

    def refresh_browse_index(self, index: BrowseIndex, names) -> None:
        """Bring ``names`` (changed, added, renamed away or removed) up to date in ``index``."""
        names = [n for n in dict.fromkeys(names) if n]
        if not names:
            return
        with self.db.read() as conn:
            fresh = _index_entries(conn, adapters.c.name.in_(names))
        index.replace([n for n in names if n not in {e.row.name for e in fresh}], fresh)


class BrowsingMixin(_PagedQueries, _BrowseIndexMethods):
    """Paged SQL queries and the in-memory browse index (mixed into hub.service.Hub)."""
