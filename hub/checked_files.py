"""Reading a linked adapter's files only as they were registered.

A linked adapter (`hub add --link`) stays in a folder hub does not own. Between
registration and use, anyone who can write that folder can swap a file for a
symbolic link to a secret (`/etc/shadow`, `~/.ssh/id_ed25519`) or for other content;
`hub push` would then upload it, `hub export` copy it, `hub merge` read it. Every
read of such a file after registration goes through this module:

- the folder and the file are opened with ``O_NOFOLLOW`` (the file relative to the
  folder's descriptor), so a symbolic link at either place is refused, not followed;
- the file must be a regular file (no FIFO, device or socket) of the recorded size;
- its sha256 must equal the recorded one, computed from the open descriptor, before
  a single byte is handed on.

``open_checked`` returns the verified open file (serving, uploading), ``read_checked``
its bytes (small files), ``copy_checked`` writes a verified copy in one pass (export,
and the private folder that merge, combine and push read).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import BinaryIO, Mapping

from hub.errors import IntegrityError, NotFound

CHUNK = 1 << 20
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
FIX = "restore the file as it was registered, or `hub rm` the adapter and add it again"


def _open_fd(folder: Path, name: str) -> int:
    """Descriptor of ``folder/name``: no symbolic link at the folder or the file, regular file only."""
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        raise IntegrityError(f"recorded file name {name!r} is not a plain file name", str(folder), FIX)
    where = str(Path(folder) / name)
    try:
        dir_fd = os.open(folder, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise IntegrityError("the linked adapter's folder is now a symbolic link or not a folder", str(folder),
                                 "hub reads only the folder it registered; " + FIX) from None
        if exc.errno == errno.ENOENT:
            raise NotFound("linked adapter folder is gone", str(folder), FIX) from None
        raise
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just below)
        fd = os.open(name, os.O_RDONLY | _NOFOLLOW | _CLOEXEC | _NONBLOCK, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise IntegrityError(f"{name} is now a symbolic link", where,
                                 "hub reads only the regular file it registered and never follows links; "
                                 + FIX) from None
        if exc.errno == errno.ENOENT:
            raise NotFound(f"{name} of the linked adapter is gone", where, FIX) from None
        raise
    finally:
        os.close(dir_fd)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise IntegrityError(f"{name} is no longer a regular file", where, FIX)
    if _NONBLOCK:
        os.set_blocking(fd, True)
    return fd


def _check_size(fd: int, record_file: Mapping, where: str) -> None:
    size = os.fstat(fd).st_size
    if size != int(record_file["size"]):
        os.close(fd)
        raise IntegrityError(f"{record_file['name']} has {size} bytes but {record_file['size']} were registered",
                             where, "the linked file changed since it was registered; " + FIX)


def _mismatch(record_file: Mapping, where: str) -> IntegrityError:
    return IntegrityError(f"{record_file['name']} does not match the sha256 recorded when it was registered", where,
                          "the linked file changed since it was registered; " + FIX)


class NotRegularFile(OSError):
    """A FIFO, device, socket or folder where a file was expected."""


class FileTooLarge(OSError):
    """A file larger than the caller's bound."""


def open_regular(path: str | os.PathLike, buffering: int = -1) -> BinaryIO:
    """``path`` opened for binary reading if it is a regular file (links to one are fine).
    Decided on the open descriptor (opened non-blocking), so a FIFO, even one swapped in
    after a check, can never block: raises NotRegularFile, or the OSError of the open."""
    fd = os.open(path, os.O_RDONLY | _CLOEXEC | _NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotRegularFile(errno.EINVAL, "not a regular file (a FIFO, device or folder)", str(path))
    if _NONBLOCK:
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb", buffering=buffering)


def read_regular(path: str | os.PathLike, max_bytes: int) -> bytes:
    """The bytes of ``path`` if it is a regular file (see open_regular) of at most
    ``max_bytes``: raises NotRegularFile, FileTooLarge, or the OSError of the open."""
    with open_regular(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > max_bytes:
            raise FileTooLarge(errno.EFBIG, f"{size:,} bytes, more than the {max_bytes:,} allowed", str(path))
        data = fh.read(max_bytes + 1)   # the file may have grown since fstat
    if len(data) > max_bytes:
        raise FileTooLarge(errno.EFBIG, f"more than the {max_bytes:,} bytes allowed", str(path))
    return data


def open_checked(folder: str | os.PathLike, record_file: Mapping, *, rehash: bool = True) -> BinaryIO:
    """``folder/<record_file['name']>`` opened for reading, verified against the record's
    ``size`` and ``sha256`` (see the module doc), positioned at the start.

    ``rehash=False`` skips the hash (links, file type and size are still checked): for
    hub's own read-only store blobs, which `hub verify` re-hashes."""
    folder = Path(folder)
    where = str(folder / record_file["name"])
    fd = _open_fd(folder, record_file["name"])
    _check_size(fd, record_file, where)
    fh = os.fdopen(fd, "rb")
    if not rehash:
        return fh
    try:
        digest = hashlib.sha256()
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
        if digest.hexdigest() != record_file["sha256"]:
            raise _mismatch(record_file, where)
        fh.seek(0)
    except BaseException:
        fh.close()
        raise
    return fh


def read_checked(folder: str | os.PathLike, record_file: Mapping) -> bytes:
    with open_checked(folder, record_file) as fh:
        return fh.read()


def copy_checked(folder: str | os.PathLike, record_file: Mapping, dest: str | os.PathLike) -> Path:
    """Copy ``folder/<name>`` to ``dest`` in one pass, hashing what is copied; the copy is
    removed and IntegrityError raised unless it equals the record. ``dest`` must not exist."""
    folder, dest = Path(folder), Path(dest)
    where = str(folder / record_file["name"])
    fd = _open_fd(folder, record_file["name"])
    _check_size(fd, record_file, where)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "rb") as src, open(dest, "xb") as out:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != record_file["sha256"]:
            raise _mismatch(record_file, where)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return dest
