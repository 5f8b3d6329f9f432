"""Start the disk writes of finished output early, on a thread of its own.

A merge writes gigabytes through the page cache; left alone, the kernel writes them out
only when they are 30 s old or when a tenth of memory is dirty, so the caller's `sync`
(or the next fsync anywhere on the filesystem) waits for the whole model after the merge
has ended. ``sync_file_range(SYNC_FILE_RANGE_WRITE)`` on each finished stretch starts
that writeout while the merge is still folding: the disk works in parallel with the CPU.
It only starts writes (the data's durability is still what `sync` or fsync gives, as
for `cp`), and it is a hint: where the call is missing (not Linux) nothing happens.

The call blocks while the device's queue is full, so it runs here and not in the writer:
the writer never waits for the disk. Each stream hands over a duplicate of its file
descriptor, closed here after its last range, so a closed and reused descriptor number
can never receive another file's ranges.

    wb = Writeback()
    fd = wb.track(stream_fd)          # a duplicate, owned by wb
    wb.written(fd, offset, nbytes)    # queue the writeout of a finished range
    wb.release(fd)                    # after the file's last range
    wb.finish()                       # no more files: the thread ends when its queue is empty
"""

from __future__ import annotations

import functools
import os
import queue
import threading

FLUSH_BYTES = 32 << 20          # the writer hands over ranges of at least this many bytes
PAGE = 4096                     # ranges end on a page boundary (os.sysconf would say; 4 KiB is the floor)
SYNC_FILE_RANGE_WRITE = 2       # <fcntl.h>: start writeout of dirty pages, do not wait for it


@functools.cache
def sync_file_range():
    """libc's sync_file_range (the process's own symbols), or None where there is none."""
    import ctypes

    try:
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError, TypeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


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
