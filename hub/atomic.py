"""Writes that appear whole or not at all: the one staging scheme every writer uses.

Output goes to a hidden sibling ``.<name>.XXXXXXXX.incomplete`` (a folder, for a file its
only entry), renamed over the target when complete; rename is atomic within a folder, so
a failure leaves the target as it was and a hard kill leaves only that hidden name, which
`hub doctor` recognises and removes. An existing target is swapped through a hidden
``.<name>.XXXXXXXX.old`` folder, never half-overwritten.

(The content-addressed store stages blobs under HUB_HOME/tmp instead: a blob's name is its
hash, known only once it is written; see hub.registry.store.)
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from hub.errors import AlreadyExists, UsageError

log = logging.getLogger(__name__)


def staging_folder(target: Path) -> Path:
    """A new hidden ``.<name>.XXXXXXXX.incomplete`` folder beside ``target``, mode from the umask."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".incomplete"))
    os.chmod(tmp, 0o777 & ~current_umask())   # mkdtemp makes 0700; outputs follow the umask
    return tmp


class AtomicFolder:
    """A folder that appears at ``target`` only once committed.

    ``with AtomicFolder(target) as tmp: ...write into tmp...; commit()``: on an
    exception (KeyboardInterrupt included) the temporary folder is removed; a hard
    kill leaves only a hidden ``.incomplete`` folder that nothing mistakes for a model.
    """

    def __init__(self, target: str | os.PathLike, overwrite: bool = False, replace_files: bool = False):
        self.target = Path(target).absolute()
        self.overwrite = overwrite
        self.replace_files = replace_files   # export: a regular file at the target may be replaced too
        self.tmp: Path | None = None
        self.committed = False

    def check(self) -> None:
        """Refuse early (before any work) when the target is taken."""
        if not (self.replace_files and self.overwrite):
            check_target(self.target, self.overwrite)

    def __enter__(self) -> Path:
        self.check()
        self.tmp = staging_folder(self.target)
        log.debug("writing %s through %s", self.target, self.tmp)
        return self.tmp

    def commit(self) -> None:
        assert self.tmp is not None
        if os.path.lexists(self.target):
            self.check()
            # the old target (folder, file or symlink) moves into a hidden folder removed whole
            old = Path(tempfile.mkdtemp(dir=self.target.parent, prefix=f".{self.target.name}.", suffix=".old"))
            os.replace(self.target, old / "previous")
            os.replace(self.tmp, self.target)
            shutil.rmtree(old, ignore_errors=True)
            log.debug("replaced %s (the previous one removed)", self.target)
        else:
            os.replace(self.tmp, self.target)
            log.debug("wrote %s", self.target)
        self.committed = True

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.committed and self.tmp is not None:
            log.debug("%s not written (%s); staging removed", self.target, exc_type.__name__ if exc_type else "no commit")
            shutil.rmtree(self.tmp, ignore_errors=True)


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_target(target: Path, overwrite: bool) -> None:
    if not target.exists():
        return
    if not target.is_dir():
        raise UsageError("the output path is a file", str(target), "choose a folder path for --out")
    if any(target.iterdir()) and not overwrite:
        raise AlreadyExists("the output folder already exists and is not empty", str(target),
                            "choose another --out, or pass --overwrite to replace it")


@contextmanager
def atomic_file(target: str | os.PathLike) -> Iterator[Path]:
    """``with atomic_file(target) as tmp: write tmp``: ``tmp`` has the target's name inside a
    hidden staging folder (so writers that look at the suffix see the right one) and replaces
    ``target`` when the block ends without an exception; otherwise the target is untouched."""
    target = Path(target)
    folder = staging_folder(target)
    try:
        tmp = folder / target.name
        yield tmp
        os.replace(tmp, target)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_text(target: str | os.PathLike, text: str) -> None:
    """``target``'s whole new content, or its old one (UTF-8)."""
    with atomic_file(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
