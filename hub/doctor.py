"""`hub doctor`: find what a crash or a stray hand left behind, and plan the repair.

The registry (database rows) and the content-addressed store (files under
HUB_HOME) are written in an order that keeps a crash harmless: blobs land before
the row that names them commits, rows go before their blobs are deleted. What a
crash can leave is therefore always one of a few *explainable* leftovers:

- ``tmp_leftover``   a staging file or folder under HUB_HOME/tmp (``*.incomplete``)
- ``orphan_blob``    a store file no row references (added then killed, or removed then killed)
- ``stray_file``     something in the store that is not ``sha256/<ab>/<64 hex>``
- ``stale_view``     a views/<sha> folder of an adapter that is gone, or that disagrees with its row
- ``missing_file``   a row whose store file is gone (never produced by hub itself; disks fail)
- ``corrupt_blob``   a store file whose size disagrees with its row
- ``missing_link``   a linked adapter whose folder or files are gone
- ``missing_model``  a merged model whose recorded folder is gone (reported; the user may have moved it)
- ``orphan_rows``    child rows (files, tags, ...) whose adapter row is gone
- ``expired_trash``  a removed adapter kept in the trash past the retention period (HUB_TRASH_DAYS):
                     --fix empties it, and its store files go as orphans on the next pass. Store files
                     of entries still within the period are in use, never orphans.

This module only looks at the filesystem and at plain facts the service reads from
the database; it never opens the database itself, so it stays testable and free of
SQLAlchemy. ``plan`` returns Problems, each saying what ``--fix`` would do (or
None where doctor will not touch user data).

Anything younger than ``grace_s`` seconds is left alone: it may belong to a hub
process that is running right now.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

STORE_MARKER = "registry.json"   # hub.registry.binding.MARKER (doctor imports no registry code)
_SHA = re.compile(r"^[0-9a-f]{64}$")
DEFAULT_GRACE_S = 600.0


@dataclass(frozen=True)
class FileFact:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class AdapterFact:
    """What the registry says about one adapter, as far as files are concerned."""

    id: int
    name: str
    sha256: str
    storage: str                     # store | link
    path: str | None
    files: tuple[FileFact, ...]


@dataclass(frozen=True)
class RegistryFacts:
    adapters: tuple[AdapterFact, ...]
    orphan_rows: dict[str, int] = field(default_factory=dict)   # table -> rows whose adapter is gone
    integrity: tuple[str, ...] = ()                              # database self-check messages, if any
    models: tuple[tuple[str, str], ...] = ()                     # merged models: (name, folder)
    trashed_blobs: frozenset = frozenset()                       # store files trash entries keep
    expired_trash: tuple[tuple[int, str, float, int], ...] = ()  # (entry id, name, age in days, size)
    retention_days: float = 30.0

    def referenced_blobs(self) -> dict[str, int]:
        """sha256 -> recorded size, over store-backed adapters."""
        out: dict[str, int] = {}
        for a in self.adapters:
            if a.storage == "store":
                for f in a.files:
                    out[f.sha256] = f.size
        return out


@dataclass(frozen=True)
class Problem:
    kind: str
    target: str          # a path, or an adapter name
    detail: str
    fix: str | None      # what --fix does; None: doctor reports only
    size: int = 0
    adapter_id: int | None = None   # the adapter's id (the trash entry's for expired_trash)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("adapter_id")
        return d


@dataclass
class DoctorReport:
    problems: list[Problem]                 # found (before any fix)
    fixed: list[Problem] = field(default_factory=list)
    failed: list[tuple[Problem, str]] = field(default_factory=list)
    skipped_recent: int = 0                 # leftovers younger than the grace period
    checked: dict[str, int] = field(default_factory=dict)
    after_fix: list[Problem] | None = None  # a fresh look after --fix, when there was one

    @property
    def remaining(self) -> list[Problem]:
        if self.after_fix is not None:
            return list(self.after_fix)
        return list(self.problems)

    @property
    def healthy(self) -> bool:
        return not self.remaining

    def to_dict(self) -> dict:
        return {
            "healthy": self.healthy,
            "problems": [p.to_dict() for p in self.problems],
            "fixed": [p.to_dict() for p in self.fixed],
            "failed": [{**p.to_dict(), "error": e} for p, e in self.failed],
            "remaining": [p.to_dict() for p in self.remaining],
            "skipped_recent": self.skipped_recent,
            "checked": self.checked,
        }


@dataclass(frozen=True)
class Layout:
    """The places under HUB_HOME that doctor inspects (mirrors hub.registry.store.Store)."""

    home: Path

    @property
    def store(self) -> Path:
        return self.home / "store"

    @property
    def blobs(self) -> Path:
        return self.store / "sha256"

    @property
    def tmp(self) -> Path:
        return self.home / "tmp"

    @property
    def views(self) -> Path:
        return self.home / "views"

    def blob(self, sha: str) -> Path:
        return self.blobs / sha[:2] / sha


def _size(path: Path) -> int:
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def _age(path: Path, now: float) -> float:
    """Seconds since the entry (or anything inside a folder) last changed."""
    try:
        newest = path.lstat().st_mtime
    except FileNotFoundError:
        return float("inf")
    if path.is_dir() and not path.is_symlink():
        for dirpath, dirs, files in os.walk(path):
            for n in dirs + files:
                try:
                    newest = max(newest, os.lstat(os.path.join(dirpath, n)).st_mtime)
                except OSError:
                    pass
    return now - newest


class _Planner:
    def __init__(self, layout: Layout, facts: RegistryFacts, grace_s: float, now: float):
        self.layout, self.facts, self.grace_s, self.now = layout, facts, grace_s, now
        self.problems: list[Problem] = []
        self.skipped_recent = 0
        self.checked = {"adapters": len(facts.adapters), "blobs": 0, "tmp_entries": 0, "views": 0}

    def recent(self, path: Path) -> bool:
        if self.grace_s > 0 and _age(path, self.now) < self.grace_s:
            self.skipped_recent += 1
            return True
        return False

    def add(self, *args, **kwargs) -> None:
        self.problems.append(Problem(*args, **kwargs))

    def tmp(self) -> None:
        if not self.layout.tmp.is_dir():
            return
        for entry in sorted(self.layout.tmp.iterdir()):
            self.checked["tmp_entries"] += 1
            if self.recent(entry):
                continue
            kind = "folder" if entry.is_dir() and not entry.is_symlink() else "file"
            self.add("tmp_leftover", str(entry), f"unfinished staging {kind} left by an interrupted hub process",
                     "delete it", _size(entry))

    def store(self) -> None:
        referenced = self.facts.referenced_blobs()
        root = self.layout.store
        if root.is_dir():
            for dirpath, dirs, files in os.walk(root):
                here = Path(dirpath)
                dirs.sort()
                for name in sorted(files):
                    path = here / name
                    expected_place = _SHA.fullmatch(name) and here == self.layout.blobs / name[:2]
                    if here == root and name == STORE_MARKER:
                        continue   # the store's registry id (hub.registry.binding)
                    if not expected_place:
                        if not self.recent(path):
                            self.add("stray_file", str(path), "file in the store that is not a content-addressed blob",
                                     "delete it", _size(path))
                        continue
                    self.checked["blobs"] += 1
                    if name in self.facts.trashed_blobs and name not in referenced:
                        continue   # a removed adapter's, kept until its trash entry goes
                    if name in referenced:
                        recorded = referenced[name]
                        actual = path.lstat().st_size
                        if actual != recorded:
                            self.add("corrupt_blob", str(path), f"size {actual} but the registry recorded {recorded}",
                                     None, actual)
                        continue
                    if self.recent(path):
                        continue
                    self.add("orphan_blob", str(path), "no registered adapter uses this store file "
                             "(left by an interrupted add or rm)", "delete it", _size(path))
                for d in list(dirs):
                    sub = here / d
                    if sub.is_symlink():
                        dirs.remove(d)
                        if not self.recent(sub):
                            self.add("stray_file", str(sub), "symlink inside the store", "delete it")

    def rows(self) -> None:
        for a in self.facts.adapters:
            if a.storage == "store":
                missing = [f.name for f in a.files if not self.layout.blob(f.sha256).is_file()]
                if missing:
                    self.add("missing_file", a.name, f"store file(s) of this adapter are gone: {', '.join(missing)}",
                             "remove the registry row (the data is lost; re-add the adapter from its source)",
                             adapter_id=a.id)
            else:
                folder = Path(a.path or "")
                missing = [f.name for f in a.files if not (folder / f.name).is_file()]
                if not folder.is_dir() or missing:
                    what = "linked folder is gone" if not folder.is_dir() else f"linked files are gone: {', '.join(missing)}"
                    self.add("missing_link", a.name, f"{what} ({folder})", None, adapter_id=a.id)
        for name, folder in self.facts.models:
            if not Path(folder).is_dir():
                self.add("missing_model", name, f"merged model folder is gone ({folder})", None)
        for table, n in sorted(self.facts.orphan_rows.items()):
            if n:
                self.add("orphan_rows", table, f"{n} row(s) belong to adapters that no longer exist",
                         "delete those rows")
        for message in self.facts.integrity:
            self.add("database", "registry", message, None)
        for entry_id, name, age, size in self.facts.expired_trash:
            self.add("expired_trash", name, f"in the trash for {age:.0f} days, past the retention period of "
                     f"{self.facts.retention_days:g} days (HUB_TRASH_DAYS)",
                     "empty it from the trash (its store files are freed)", size, adapter_id=entry_id)

    def views(self) -> None:
        if not self.layout.views.is_dir():
            return
        by_sha = {a.sha256: a for a in self.facts.adapters if a.storage == "store"}
        for entry in sorted(self.layout.views.iterdir()):
            self.checked["views"] += 1
            adapter = by_sha.get(entry.name)
            if adapter is None:
                if not self.recent(entry):
                    self.add("stale_view", str(entry), "view of an adapter that is no longer registered",
                             "delete it (views are rebuilt on demand)", _size(entry))
                continue
            problem = _view_mismatch(entry, adapter, self.layout)
            if problem and not self.recent(entry):
                self.add("stale_view", str(entry), f"view of {adapter.name} {problem}",
                         "delete it (views are rebuilt on demand)", _size(entry))


_OUTPUT_LEFTOVER = re.compile(r"^\..+\.[A-Za-z0-9_]+\.(incomplete|old)$")


def _outputs(planner: "_Planner", folders) -> None:
    """Hidden ``.NAME.XXXX.incomplete`` / ``.old`` folders that `hub merge` and `hub export`
    leave beside an output folder when they are killed before the final rename."""
    for folder in sorted({Path(f) for f in folders}):
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            if _OUTPUT_LEFTOVER.match(entry.name) and entry.is_dir() and not entry.is_symlink():
                if not planner.recent(entry):
                    planner.add("tmp_leftover", str(entry), "unfinished output folder of an interrupted "
                                "merge or export (never renamed into place)", "delete it", _size(entry))


def _view_mismatch(view: Path, adapter: AdapterFact, layout: Layout) -> str | None:
    if not view.is_dir() or view.is_symlink():
        return "is not a folder"
    names = {p.name for p in view.iterdir()}
    wanted = {f.name for f in adapter.files}
    if names != wanted:
        return f"holds {sorted(names)} instead of {sorted(wanted)}"
    for f in adapter.files:
        path = view / f.name
        if path.is_symlink() or not path.is_file() or path.stat().st_size != f.size:
            return f"has a wrong {f.name}"
    return None


def plan(home: Path, facts: RegistryFacts, grace_s: float = DEFAULT_GRACE_S,
         now: float | None = None, output_dirs=()) -> DoctorReport:
    """Everything wrong under ``home`` given what the registry holds; changes nothing.

    ``output_dirs``: folders that receive merge/export outputs, searched for the hidden
    leftovers of interrupted writes (the parents of recorded merged models always are)."""
    p = _Planner(Layout(Path(home)), facts, grace_s, time.time() if now is None else now)
    p.rows()
    p.tmp()
    p.store()
    p.views()
    _outputs(p, [*output_dirs, *(Path(folder).parent for _, folder in facts.models)])
    return DoctorReport(p.problems, skipped_recent=p.skipped_recent, checked=p.checked)


def remove_path(path: Path) -> None:
    """Delete a file, link or folder; already gone is fine. (Read-only blobs need no
    chmod: unlinking depends on the folder's permissions, not the file's.)"""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass
