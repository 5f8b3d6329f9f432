"""What the merge asks the kernel about the shards it writes (Linux; elsewhere nothing).

**Space up front.** ``preallocate`` reserves a new shard's blocks before the first byte is
written (``fallocate`` with FALLOC_FL_KEEP_SIZE: the file still grows as it is written). On
ext4 a write into reserved blocks skips delayed allocation's per-page bookkeeping: writing
2 GiB took 0.8-1.3 s of CPU instead of 1.2-1.9 s here (and the disk-space check happens once,
before any work: a full disk is refused at the start, not 2 GB in). The glibc wrapper
posix_fallocate is avoided on purpose: where the filesystem cannot reserve, it writes zeros
over the whole file.

**Writeout started early.** A merge writes gigabytes through the page cache; left alone,
the kernel writes them out only when they are 30 s old or when a tenth of memory is dirty,
so the caller's `sync` (or the next fsync anywhere on the filesystem) waits for the whole
model after the merge has ended. ``sync_file_range(SYNC_FILE_RANGE_WRITE)`` on each finished
stretch starts that writeout while the merge is still folding: the disk works in parallel
with the CPU. It only starts writes (durability is still what `sync` or fsync gives, as for
`cp`), and it is a hint. The call blocks while the device's queue is full, so it runs on a
thread of its own (``Writeback``) and the writer never waits for the disk. Each stream hands
over a duplicate of its file descriptor, closed there after its last range, so a closed and
reused descriptor number can never receive another file's ranges.

    preallocate(fd, nbytes)           # may raise OSError (ENOSPC); unsupported: nothing
    wb = Writeback()
    fd = wb.track(stream_fd)          # a duplicate, owned by wb
    wb.written(fd, offset, nbytes)    # queue the writeout of a finished range
    wb.release(fd)                    # after the file's last range
    wb.finish()                       # no more files: the thread ends when its queue is empty
"""

from __future__ import annotations

import errno
import functools
import os
import queue
import threading

FLUSH_BYTES = 32 << 20          # the writer hands over ranges of at least this many bytes
PAGE = 4096                     # ranges end on a page boundary (os.sysconf would say; 4 KiB is the floor)
SYNC_FILE_RANGE_WRITE = 2       # <fcntl.h>: start writeout of dirty pages, do not wait for it
FALLOC_FL_KEEP_SIZE = 1         # <linux/falloc.h>: reserve blocks, leave the file's size alone


@functools.cache
def _libc():
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True)    # the process's own symbols: libc's
    except (OSError, TypeError):
        return None


def _libc_function(name: str, argtypes: list):
    """libc's ``name`` returning an int, or None where there is none."""
    import ctypes

    call = getattr(_libc(), name, None)
    if call is not None:
        call.argtypes = argtypes
        call.restype = ctypes.c_int
    return call


@functools.cache
def sync_file_range():
    """libc's sync_file_range, or None where there is none."""
    import ctypes

    return _libc_function("sync_file_range", [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint])


@functools.cache
def fallocate():
    """libc's fallocate (the Linux call, not posix_fallocate's emulation), or None."""
    import ctypes

    return _libc_function("fallocate", [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64])


def preallocate(fd: int, nbytes: int) -> None:
    """Reserve ``nbytes`` of blocks for the file behind ``fd``. No space (or quota) raises
    OSError; a filesystem or platform that cannot reserve is left to allocate as it writes."""
    call = fallocate()
    if call is None or nbytes <= 0:
        return
    if call(fd, FALLOC_FL_KEEP_SIZE, 0, nbytes) != 0:
        err = _ctypes_errno()
        if err in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(err, os.strerror(err))


def _ctypes_errno() -> int:
    import ctypes

    return ctypes.get_errno()


_CLOSE = -1
_END = None


class Writeback:
    """One thread that starts the writeout of ranges handed to it, in order; a context
    manager whose exit ends the thread (and, on an exception, drops ranges not yet started)."""

    def __init__(self, call=None):
        self.call = call or sync_file_range()
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.open = True
        self.abandoned = False
        self.started = 0        # ranges whose writeout was started
        self.thread = threading.Thread(target=self._run, name="hub-merge-writeback", daemon=True)
        self.thread.start()

    def __enter__(self) -> Writeback:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.finish(abandon=exc_type is not None)

    def track(self, fd: int) -> int:
        return os.dup(fd)

    def written(self, fd: int, offset: int, nbytes: int) -> None:
        with self.lock:
            if self.open and nbytes > 0:
                self.queue.put((fd, offset, nbytes))

    def release(self, fd: int) -> None:
        with self.lock:
            if self.open:
                self.queue.put((fd, 0, _CLOSE))
                return
        os.close(fd)     # a straggler after finish(): nobody reads the queue any more

    def finish(self, abandon: bool = False) -> None:
        """No more ranges; ``abandon`` (a failed merge) drops the ones not yet started.
        Returns at once: the thread starts what is queued and ends by itself."""
        with self.lock:
            if not self.open:
                return
            self.open = False
            self.abandoned = abandon
            self.queue.put(_END)

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is _END:
                return
            fd, offset, nbytes = item
            if nbytes == _CLOSE:
                os.close(fd)
            elif self.call is not None and not self.abandoned:
                self.call(fd, offset, nbytes, SYNC_FILE_RANGE_WRITE)   # failures change nothing: a hint
                self.started += 1
