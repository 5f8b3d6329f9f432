"""Registered adapters: add, scan, list, read, tag, rename, export and verify them.

Adding records the adapter and, in the same transaction, its fit verdicts against every
registered base (the checks service) and, for a pull, the remote it came from."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Iterable

from hub.errors import AlreadyExists, DiskFull, HubError, IntegrityError, InvalidAdapter, NotFound, UsageError
from hub.names import check_name, check_tag, name_from_folder
from hub.progress import Progress
from hub.records import AddResult, AdapterRecord, ScanResult, VerifyResult
from hub.redact import without_userinfo
from hub.registry import adapters as q
from hub.registry import list_engine, reading
from hub.registry import remotes as qr
from hub.registry import versions as qv
from hub.registry.db import RowConflict
from hub.listing.filters import ListFilter
from hub.registry.versions import version_label

log = logging.getLogger(__name__)



class AdapterService:
    """Needs the context (registry, store) and the checks service (verdicts of new adapters)."""

    def __init__(self, ctx, checks):
        self.ctx, self.db, self.store = ctx, ctx.db, ctx.store
        self.checks = checks
        self._checked_copies: list[Path] = []   # private copies of linked adapters, see adapter_dir

    def close(self) -> None:
        for folder in self._checked_copies:
            shutil.rmtree(folder, ignore_errors=True)
        self._checked_copies.clear()

    # -- adding ----------------------------------------------------------------------------

    def add(self, path: str | os.PathLike, name: str | None = None, tags: Iterable[str] = (), link: bool = False,
            source: dict | None = None, recipe: dict | None = None, description: str | None = None,
            lineage: list[dict] | None = None, allow_nonfinite: bool = False,
            new_version: bool = False, remote: dict | None = None) -> AddResult:
        """Register one adapter folder: copy it into the store (or link it in place).
        ``new_version``: add it as the next version of ``name`` (which may already be taken).
        ``remote``: the Hub repo it was pulled from (hub.registry.remotes.upsert's fields),
        recorded in the same transaction."""
        folder = Path(path).expanduser()
        tags = self._new_name_and_tags(name, tags, new_version)
        with self.store.staging() as staging:
            info = self._inspect(folder, staging, link, allow_nonfinite)
            status, final_name, message = self._register(
                folder, info, staging, link=link, tags=tags, name=name, source=source, recipe=recipe,
                description=description, lineage=lineage, new_version=new_version, remote=remote)
        log.debug("add %s: %s as %s (%s)", folder, status, final_name,
                  "linked in place" if link else "copied into the store")
        return AddResult(status, self.get(final_name), message)

    def add_stream(self, config_text: str, weights, size: int, name: str, tags: Iterable[str] = (),
                   source: dict | None = None, recipe: dict | None = None, description: str | None = None,
                   lineage: list[dict] | None = None) -> AddResult:
        """Register an adapter while it is being written (a combination's result): its config
        text and its safetensors buffers (``weights``, header first, ``size`` bytes in all;
        hub.formats.safetensors_layout) go straight into the store's staging area, hashed and
        checked on the way as ``add`` checks a folder (hub.inspect.inspect_stream; NaN/Inf
        refused), so nothing is written twice or read back. Then as ``add``: one transaction,
        the blobs renamed into place before the row commits, nothing left behind on error."""
        from hub.inspect import inspect_stream, refuse_on_errors

        tags = self._new_name_and_tags(name, tags, False)
        with self.store.staging() as staging:
            info = inspect_stream(name, config_text, weights, size, staging.sink_factory)
            refuse_on_errors(info)
            status, final_name, message = self._register(
                Path(name), info, staging, link=False, tags=tags, name=name, source=source, recipe=recipe,
                description=description, lineage=lineage)
        log.debug("add %s (written into the store): %s as %s", name, status, final_name)
        return AddResult(status, self.get(final_name), message)

    def _new_name_and_tags(self, name: str | None, tags: Iterable[str], new_version: bool) -> list[str]:
        """Check the name an adapter is to be added under (free, unless ``new_version``) and its tags."""
        if name is not None:
            check_name(name)
        elif new_version:
            raise UsageError("a new version needs the name it belongs to", None, "pass --name NAME")
        checked = [check_tag(t) for t in tags]
        if name is not None and not new_version:
            with self.db.read() as conn:
                if q.name_taken(conn, name):
                    raise AlreadyExists(f"the name {name!r} is already taken", None,
                                        "choose another with --name, add it as a new version with --new-version, "
                                        "or `hub rm` the old one")
        return checked

    def _inspect(self, folder: Path, staging, link: bool, allow_nonfinite: bool = False):
        """Read, hash and check one folder (copying it into ``staging`` unless ``link``);
        no database access, so scan runs it on worker threads."""
        from hub.inspect import inspect_adapter, refuse_on_errors

        info = inspect_adapter(folder, None if link else staging.sink_factory, check_values=not allow_nonfinite)
        refuse_on_errors(info)
        if link:
            _refuse_linked_links(folder, info)
        return info

    def _register(self, folder: Path, info, staging, *, link: bool, tags: list[str], name: str | None = None,
                  wanted: str | None = None, alternatives: Iterable[str] = (), source: dict | None = None,
                  recipe: dict | None = None, description: str | None = None,
                  lineage: list[dict] | None = None, new_version: bool = False,
                  remote: dict | None = None) -> tuple[str, str, str]:
        """Record an inspected adapter in one write transaction; returns (status, name, message).
        Without ``name``, takes the first free of ``wanted`` (default: the folder's name),
        ``alternatives``, then ``wanted-2``, ``wanted-3``..."""
        source = dict(source or {"kind": "local", "path": str(folder.resolve())})
        if "://" in str(source.get("path") or ""):   # a URL is recorded without user:token@
            source["path"] = without_userinfo(source["path"])
        final_name = name
        try:
            with self.db.write() as conn:
                existing = q.get_by_sha(conn, info.sha256)
                if existing is not None:
                    return "exists", version_label(existing), f"same content is already registered as {version_label(existing)!r}"
                final_name = name or _free_name_in(conn, wanted or name_from_folder(folder.resolve().name),
                                                   alternatives)
                version = qv.next_version(conn, final_name) if new_version else 1
                adapter_id = q.insert_adapter(
                    conn, info, final_name, storage="link" if link else "store",
                    path=str(folder.resolve()) if link else None, source=source, tags=tags,
                    recipe=recipe, description=description, version=version)
                if version > 1:
                    qv.mark_latest(conn, final_name)
                    final_name = f"{final_name}@{version}"
                if lineage:
                    q.add_lineage(conn, "adapter", adapter_id, lineage)
                self.checks.check_new_adapter(conn, adapter_id, info)
                if remote is not None:
                    qr.upsert(conn, adapter_id, **remote)
                if not link:
                    # blobs land before the row commits: a crash here leaves orphan blobs
                    # (`hub doctor` removes them), never a row without files
                    self.ctx.lock(conn)
                    staging.commit({f.name: f.sha256 for f in info.files})
        except RowConflict:
            staging.rollback()
            with self.db.read() as conn:
                dup = q.get_by_sha(conn, info.sha256)
            if dup is not None:
                return "exists", version_label(dup), f"same content is already registered as {version_label(dup)!r}"
            raise AlreadyExists(f"the name {final_name!r} is already taken", str(folder),
                                "choose another with --name") from None
        except BaseException:
            staging.rollback()
            raise
        return "added", final_name, f"added {final_name}"


    def _free_name(self, wanted: str, alternatives: Iterable[str] = ()) -> str:
        with self.db.read() as conn:
            return _free_name_in(conn, wanted, alternatives)

    def scan(self, root: str | os.PathLike, tags: Iterable[str] = (), link: bool = False,
             progress: Progress | None = None) -> ScanResult:
        """Register every adapter folder under ``root`` (recursively).

        Worker threads read, hash and check the next folders while this thread records the
        current one: hashing and file reads release the GIL, so reading overlaps the
        registry work and, with cores to spare, other reads."""
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        root = Path(root).expanduser()
        if not root.is_dir():
            raise NotFound("folder does not exist", str(root), "check the path")
        tags = [check_tag(t) for t in tags]
        folders = find_adapter_folders(root)
        result = ScanResult()
        workers = max(1, min(SCAN_WORKERS, os.cpu_count() or 1))

        def inspect_one(folder: Path):
            staging = self.store.staging()
            try:
                return staging, self._inspect(folder, staging, link)
            except BaseException:
                staging.discard()
                raise

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hub-scan") as pool:
            ahead = iter(folders)
            pending: deque = deque()

            def top_up() -> None:  # a bounded window: memory stays flat however many folders
                while len(pending) < 2 * workers and (folder := next(ahead, None)) is not None:
                    pending.append((folder, pool.submit(inspect_one, folder)))

            try:
                top_up()
                for i in range(len(folders)):
                    folder, future = pending.popleft()
                    top_up()
                    if progress:
                        progress(i, len(folders), str(folder))
                    rel = folder.relative_to(root)
                    wanted = name_from_folder(folder.resolve().name if rel == Path(".") else rel.name)
                    alternatives = [name_from_folder("-".join(rel.parts))] if len(rel.parts) > 1 else []
                    try:
                        staging, info = future.result()
                        with staging:
                            status, name, message = self._register(folder, info, staging, link=link, tags=tags,
                                                                    wanted=wanted, alternatives=alternatives)
                    except (HubError, OSError) as exc:   # one bad folder never stops a scan
                        result.failed.append((str(folder), str(exc)))
                        continue
                    if status == "added":
                        result.added.append(name)
                    else:
                        result.skipped.append((str(folder), message))
            finally:  # interrupted: drop what the workers staged ahead
                for _, future in pending:
                    future.cancel()
                for _, future in pending:
                    if not future.cancelled() and future.exception() is None:
                        future.result()[0].discard()
        if progress:
            progress(len(folders), len(folders), "")
        return result

    # -- reading ---------------------------------------------------------------------------

    def list(self, flt: ListFilter | None = None, full: bool = False) -> list[AdapterRecord]:
        """The adapters ``flt`` selects (all, by name, when None); ``full`` adds the per-module
        maps, findings and configs. The CLI's listing engine (hub.registry.list_engine)."""
        with self.db.read() as conn:
            return list_engine.records(conn, flt or ListFilter(), full)

    def count(self) -> int:
        with self.db.read() as conn:
            return reading.count(reading.Alchemy(conn))

    def get(self, name: str) -> AdapterRecord:
        with self.db.read() as conn:
            return reading.get_adapter(reading.Alchemy(conn), name)

    def adapter_dir(self, name: str) -> Path:
        """A folder holding the adapter's files under their PEFT names, for readers.

        A stored adapter's view is hard links into the store. A linked adapter's files are
        read through hub.checked_files into a private folder under HUB_HOME/tmp (removed by
        ``close()`` or when the process ends; `hub doctor` removes what a killed one left): no
        symbolic link is followed and nothing but the registered bytes reaches merge, combine
        or push."""
        record = self.get(name)
        if record.storage == "link":
            return self._checked_copy(record)
        missing = [f["name"] for f in record.files if not self.store.has(f["sha256"])]
        if missing:
            raise IntegrityError(f"store is missing {', '.join(missing)}", name, "run `hub doctor`")
        return self.store.view(record.sha256, [(f["name"], f["sha256"]) for f in record.files])

    def _checked_copy(self, record: AdapterRecord) -> Path:
        from hub.checked_files import copy_checked

        folder = self.store.temp_path("linked")
        folder.mkdir(parents=True)
        self._checked_copies.append(folder)
        _remove_at_exit(folder)
        for f in record.files:
            copy_checked(record.path, f, folder / f["name"])
        return folder

    def open_adapter_file(self, name: str | AdapterRecord, file_name: str):
        """One registered file of adapter ``name`` (or of a record already read) opened for
        reading (binary), exactly the bytes registered: a store blob, or a linked file checked
        by hub.checked_files."""
        from hub.checked_files import open_checked

        record = name if isinstance(name, AdapterRecord) else self.get(name)
        wanted = next((f for f in record.files if f["name"] == file_name), None)
        if wanted is None:
            raise NotFound(f"{name} has no file {file_name!r}", None,
                           f"its files: {', '.join(f['name'] for f in record.files)}")
        if record.storage == "link":
            return open_checked(record.path, wanted)
        return open_checked(self.store.blob_path(wanted["sha256"]).parent,
                            {**wanted, "name": wanted["sha256"]}, rehash=False)

    # -- changing --------------------------------------------------------------------------

    def tag(self, name: str, add: Iterable[str] = (), remove: Iterable[str] = ()) -> AdapterRecord:
        add = [check_tag(t) for t in add]
        remove = list(remove)
        with self.db.write() as conn:
            row = q.get_row(conn, name)
            if row is None:
                raise NotFound(f"no adapter named {name!r}", None, "see `hub list`")
            q.set_tags(conn, row.id, add, remove)
        return self.get(name)

    def rename(self, name: str, new_name: str) -> AdapterRecord:
        """Rename ``name`` with all its versions and aliases."""
        check_name(new_name)
        if "@" in name:
            raise UsageError(f"rename takes a name, not a version ({name!r})", None,
                             "rename NAME: every version moves with it")
        try:
            with self.db.write() as conn:
                if q.name_taken(conn, new_name):
                    raise AlreadyExists(f"the name {new_name!r} is already taken", None, "choose another name")
                if not q.rename(conn, name, new_name):
                    raise NotFound(f"no adapter named {name!r}", None, "see `hub list`")
        except RowConflict:
            raise AlreadyExists(f"the name {new_name!r} is already taken", None, "choose another name") from None
        return self.get(new_name)

    def export(self, name: str, out: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the adapter as a PEFT folder (real copies, so edits never reach the store).
        An existing target (with ``overwrite``) is swapped out whole at the end."""
        from hub.atomic import AtomicFolder
        from hub.write_guard import check_write_target

        record = self.get(name)
        from hub.checked_files import copy_checked

        source = None if record.storage == "link" else self.adapter_dir(name)
        out = check_write_target(self.ctx, out, sources=[record.path if source is None else source],
                                 overwrite=overwrite)
        folder = AtomicFolder(out, overwrite=True, replace_files=True)
        with folder as tmp:
            for f in record.files:
                try:
                    if source is None:   # linked: verified against the record while copying
                        copy_checked(record.path, f, tmp / f["name"])
                    else:
                        shutil.copyfile(source / f["name"], tmp / f["name"])
                except OSError as exc:
                    DiskFull.check(exc, out)
                    raise
            folder.commit()
        return out

    def verify(self, name: str | None = None, progress: Progress | None = None) -> list[VerifyResult]:
        """Re-hash every file and scan tensors for NaN/Inf."""
        from hub.verify import verify_files

        records = [self.get(name)] if name else self.list(ListFilter(all_versions=True), full=False)
        results = []
        for i, rec in enumerate(records):
            label = name or (rec.name if rec.version == 1 else f"{rec.name}@{rec.version}")
            if progress:
                progress(i, len(records), label)
            full = self.get(name or f"{rec.name}@{rec.version}")
            if full.storage == "link":
                locate = lambda f, base=Path(full.path): base / f["name"]  # noqa: E731
            else:
                locate = lambda f: self.store.blob_path(f["sha256"])  # noqa: E731
            problems = verify_files([(f, locate(f)) for f in full.files])
            results.append(VerifyResult(label, not problems, problems))
        if progress:
            progress(len(records), len(records), "")
        return results


SCAN_WORKERS = 4  # reading threads at most; more rarely helps a single disk


def _refuse_linked_links(folder: Path, info) -> None:
    """A linked adapter is read later with O_NOFOLLOW (hub.checked_files): its files must be
    regular files now, or it could never be used."""
    import stat

    for f in info.files:
        if not stat.S_ISREG(os.lstat(folder / f.name).st_mode):
            raise InvalidAdapter(f"{f.name} is a symbolic link or not a regular file", str(folder / f.name),
                                 "--link registers regular files only (they are never followed later); "
                                 "add the folder without --link to copy it into the store")


_AT_EXIT: list[Path] = []


def _remove_at_exit(folder: Path) -> None:
    if not _AT_EXIT:
        import atexit

        atexit.register(lambda: [shutil.rmtree(p, ignore_errors=True) for p in _AT_EXIT])
    _AT_EXIT.append(folder)


def _free_name_in(conn, wanted: str, alternatives: Iterable[str] = ()) -> str:
    for candidate in (wanted, *alternatives):
        if not q.name_taken(conn, candidate):
            return candidate
    for i in range(2, 10_000):
        candidate = f"{wanted}-{i}"
        if not q.name_taken(conn, candidate):
            return candidate
    raise AlreadyExists(f"no free name near {wanted!r}", None, "pass --name")


def find_adapter_folders(root: Path) -> list[Path]:
    """Folders under root holding adapter_config.json; hidden folders and symlinks skipped."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if "adapter_config.json" in filenames:
            found.append(Path(dirpath))
    return found
