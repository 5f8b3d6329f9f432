"""Streaming safetensors output: the header is written first from the plan (names,
dtypes, shapes are known before any tensor is read), then tensor bytes follow one
by one, so the writer never holds more than the tensor in hand. Untouched tensors
are copied file-to-file inside the kernel (copy_file_range) without passing
through Python. Each shard's blocks are reserved before it is written, and every finished
stretch of it is handed to a thread that starts its writeout to disk while the merge goes
on (hub.merge.kernel_io).

Everything lands in a hidden ``.<name>.*.incomplete`` folder beside the target
(hub.atomic.AtomicFolder), renamed into place only when complete: an interrupted
merge leaves nothing that looks like a model, and an existing target is swapped,
never half-overwritten.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hub.errors import DiskFull, HubError
from hub.formats.base_model import INDEX_NAME
from hub.formats.safetensors_header import DTYPE_SIZES
from hub.merge.kernel_io import FLUSH_BYTES, PAGE, Writeback, preallocate

COPY_CHUNK = 16 << 20


class ShardStream:
    """One output safetensors file, written front to back."""

    def __init__(self, path: Path, entries: list[tuple[str, str, tuple[int, ...]]], metadata: dict[str, str],
                 writeback: Writeback | None = None):
        self.path = path
        header: dict = {"__metadata__": metadata}
        offset = 0
        self.expected: list[tuple[str, int]] = []
        for name, dtype, shape in entries:
            size = DTYPE_SIZES[dtype]
            for dim in shape:
                size *= dim
            header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
            self.expected.append((name, size))
            offset += size
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)  # 8-byte aligned data area, as the safetensors library writes it
        self.total = offset
        # unbuffered: tensor bytes go straight to the file, and copy_file_range moves
        # the same file position that our own writes use
        self.fh = open(path, "wb", buffering=0)
        try:
            preallocate(self.fh.fileno(), 8 + len(raw) + offset)   # cheaper writes; no space: refused now
        except OSError as exc:
            self.fh.close()
            DiskFull.check(exc, path)
            raise
        self.writeback = writeback
        self.wb_fd = writeback.track(self.fh.fileno()) if writeback is not None else -1
        self.offset = 0     # bytes in the file so far
        self.flushed = 0    # bytes whose writeout was started
        self._write_all(memoryview(len(raw).to_bytes(8, "little") + raw))
        self.position = 0   # index into self.expected
        self.pending = 0    # bytes still owed to a tensor written in parts

    def _next(self, name: str, nbytes: int) -> None:
        self._settled()
        want, size = self.expected[self.position]
        if want != name or size != nbytes:
            raise HubError(f"internal error: writer expected {want} ({size} bytes) but got {name} ({nbytes} bytes)",
                           str(self.path), "please report this bug")
        self.position += 1

    def write(self, name: str, data) -> None:
        view = memoryview(data).cast("B")
        self._next(name, view.nbytes)
        self._write_all(view)

    def begin(self, name: str, nbytes: int) -> None:
        """Start a tensor written in parts (write_bytes), front to back."""
        self._next(name, nbytes)
        self.pending = nbytes

    def write_bytes(self, data) -> None:
        view = memoryview(data).cast("B")
        if view.nbytes > self.pending:
            raise HubError("internal error: writer got more bytes than the tensor holds", str(self.path),
                           "please report this bug")
        self._write_all(view)
        self.pending -= view.nbytes

    def _settled(self) -> None:
        if self.pending:
            raise HubError(f"internal error: {self.pending} bytes of {self.expected[self.position - 1][0]} "
                           "were never written", str(self.path), "please report this bug")

    def _write_all(self, view: memoryview) -> None:
        # write() may write less than asked (over 2 GiB per call on Linux)
        while view.nbytes:
            try:
                n = self.fh.write(view)
            except OSError as exc:
                DiskFull.check(exc, self.path)
                raise
            view = view[n:]
            self._advance(n)

    def _advance(self, n: int) -> None:
        self.offset += n
        if self.writeback is not None and self.offset - self.flushed >= FLUSH_BYTES:
            # whole pages only: a page under writeout that we still append to would make the next write wait
            end = self.offset - self.offset % PAGE
            self.writeback.written(self.wb_fd, self.flushed, end - self.flushed)
            self.flushed = end

    def copy_range(self, name: str, src_fd: int, offset: int, count: int) -> None:
        """Copy ``count`` bytes at ``offset`` of ``src_fd`` (in-kernel when possible)."""
        self._next(name, count)
        dst_fd = self.fh.fileno()
        done = 0
        if hasattr(os, "copy_file_range"):
            try:
                while done < count:
                    n = os.copy_file_range(src_fd, dst_fd, count - done, offset + done)
                    if n == 0:
                        break
                    done += n
                    self._advance(n)
            except OSError:
                # cross-filesystem on old kernels, or unsupported: fall back below
                if done:
                    os.lseek(dst_fd, -done, os.SEEK_CUR)
                    self.offset -= done
                    self.flushed = min(self.flushed, self.offset)
                done = 0
            if done == count:
                return
        while done < count:
            chunk = os.pread(src_fd, min(COPY_CHUNK, count - done), offset + done)
            if not chunk:
                raise HubError("base model file ended early while copying", str(self.path),
                               "the base file is truncated; re-download it")
            self._write_all(memoryview(chunk))
            done += len(chunk)

    def close(self) -> None:
        self._settled()
        if self.position != len(self.expected):
            missing = self.expected[self.position][0]
            self.abort()
            raise HubError(f"internal error: shard closed before {missing} was written", str(self.path),
                           "please report this bug")
        if self.writeback is not None:
            self.writeback.written(self.wb_fd, self.flushed, self.offset - self.flushed)
        self.abort()

    def abort(self) -> None:
        """Close the file (and hand the writeback its last word on it)."""
        self.fh.close()
        if self.writeback is not None:
            self.writeback.release(self.wb_fd)
            self.writeback = None


def write_index(folder: Path, weight_map: dict[str, str], total_size: int) -> None:
    doc = {"metadata": {"total_size": total_size}, "weight_map": dict(sorted(weight_map.items()))}
    (folder / INDEX_NAME).write_text(json.dumps(doc, indent=2) + "\n")
