"""Content-addressed file store under HUB_HOME/store.

Each file lives once, at ``store/sha256/<ab>/<sha256>``, read-only. Files arrive
through a Staging area in HUB_HOME/tmp (same filesystem, so the final rename is
atomic): a crash leaves only ``*.incomplete`` files that `hub doctor` removes,
never a blob whose name does not match its content.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import uuid
from pathlib import Path

from hub import paths
from hub.errors import DiskFull

INCOMPLETE = ".incomplete"
log = logging.getLogger(__name__)


class Store:
    def __init__(self, home: Path):
        self.home = Path(home)
        self.root = paths.store_dir(self.home) / "sha256"
        self.tmp = paths.tmp_dir(self.home)
        self.views = self.home / "views"

    def blob_path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self.blob_path(sha256).is_file()

    def staging(self) -> "Staging":
        return Staging(self)

    def all_blobs(self) -> dict[str, Path]:
        if not self.root.is_dir():
            return {}
        return {p.name: p for p in self.root.glob("*/*") if p.is_file()}

    def delete(self, sha256: str) -> None:
        path = self.blob_path(sha256)
        try:
            path.unlink()
            log.debug("deleted blob %s", sha256)
        except FileNotFoundError:
            pass

    def temp_path(self, label: str = "") -> Path:
        self.tmp.mkdir(parents=True, exist_ok=True)
        return self.tmp / f"{uuid.uuid4().hex}{'-' + label if label else ''}{INCOMPLETE}"

    def view(self, adapter_sha: str, files: list[tuple[str, str]]) -> Path:
        """A folder with the adapter's files under their names (hard links into the
        store), built once per adapter hash and reused; read-only by convention."""
        dest = self.views / adapter_sha
        if dest.is_dir():
            return dest
        log.debug("building view %s (%d files, hard links into the store)", dest, len(files))
        tmp = self.temp_path("view")
        tmp.mkdir(parents=True)
        try:
            for name, sha in files:
                _link_or_copy(self.blob_path(sha), tmp / name)
            self.views.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(tmp, dest)
            except OSError:
                if not dest.is_dir():  # lost a race to an identical view: fine
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return dest

    def drop_view(self, adapter_sha: str) -> None:
        shutil.rmtree(self.views / adapter_sha, ignore_errors=True)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


class Staging:
    """Collects files being copied into the store; ``commit`` moves them into place."""

    def __init__(self, store: Store):
        self.store = store
        self._open: dict[str, tuple[Path, object]] = {}
        self.created: list[str] = []  # blobs this staging added (for rollback)

    def sink_factory(self, name: str):
        tmp = self.store.temp_path()
        try:
            fh = open(tmp, "wb")
        except OSError as exc:
            DiskFull.check(exc, tmp)
            raise
        self._open[name] = (tmp, fh)

        def write(chunk) -> None:
            try:
                fh.write(chunk)
            except OSError as exc:   # the store's disk, not the source being read
                DiskFull.check(exc, self.store.tmp)
                raise
        return write

    def commit(self, hashes: dict[str, str]) -> list[str]:
        """Move staged files into the store under their hashes (name -> sha256)."""
        for name, (tmp, fh) in list(self._open.items()):
            try:
                fh.close()   # flushes the last buffered bytes
            except OSError as exc:
                DiskFull.check(exc, self.store.tmp)
                raise
            sha = hashes[name]
            dest = self.store.blob_path(sha)
            if dest.exists():
                log.debug("%s: blob %s already stored", name, sha)
                tmp.unlink()
            else:
                log.debug("%s: stored as blob %s", name, sha)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(tmp, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
                os.replace(tmp, dest)
                self.created.append(sha)
            del self._open[name]
        return self.created

    def rollback(self) -> None:
        if self.created:
            log.debug("rolling back %d new blobs", len(self.created))
        self.discard()
        for sha in self.created:
            self.store.delete(sha)
        self.created.clear()

    def discard(self) -> None:
        for tmp, fh in self._open.values():
            fh.close()
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass
        self._open.clear()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.discard()
