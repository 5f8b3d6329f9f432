"""Read and validate a safetensors header without touching tensor data.

Layout: 8-byte little-endian header length N, N bytes of JSON, then the data
area. Each tensor entry names dtype, shape and [begin, end) offsets into the
data area. We check everything the format promises (sizes agree with shapes,
offsets are contiguous and inside the file) so that later readers can trust it,
and we recognise pickle/zip files dressed up as .safetensors.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

from hub.checked_files import open_regular
from hub.errors import HubError, InvalidSafetensors, UnsafeFormat

DTYPE_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8, "C64": 8,
}
# dtypes numpy holds exactly, little-endian as the format stores them (map_tensors)
NUMPY_VIEWS = {"F16": "<f2", "F32": "<f4", "F64": "<f8"}
MAX_HEADER_BYTES = 100 * 1024 * 1024  # same bound the safetensors library enforces
READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class HeaderLimits:
    """What a header may hold before it is refused, checked while it is parsed (a crafted
    92 MB header of 1.55 M zero-size tensors took 1.5 GB and 37 s to accept)."""
    kind: str
    max_bytes: int
    max_tensors: int
    empty_tensors: bool   # zero-element tensors allowed


# A LoRA over every expert of DeepSeek-V3 (61 layers x 256 experts x 3 projections, A and B)
# has ~95,000 tensors in a ~15 MB header; a LoRA tensor is never empty.
ADAPTER = HeaderLimits("an adapter", 32 * 1024 * 1024, 200_000, False)
# One shard of a base model: the largest real ones hold tens of thousands of tensors.
BASE = HeaderLimits("a base model shard", MAX_HEADER_BYTES, 300_000, True)


class _TooManyTensors(Exception):
    pass


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


@dataclass(frozen=True)
class SafetensorsHeader:
    path: str
    header_size: int           # N, the JSON length
    file_size: int
    tensors: dict[str, TensorEntry]
    metadata: dict[str, str]

    @property
    def data_start(self) -> int:
        return 8 + self.header_size


def _sniff_unsafe(prefix: bytes, path: str) -> None:
    if prefix[:1] == b"\x80" or prefix[:4] == b"PK\x03\x04":
        raise UnsafeFormat(
            "file is a pickle/zip archive, not safetensors", path,
            "hub never unpickles weights; convert it with a trusted tool to .safetensors first",
        )


def _unique_object(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def parse_header(head: bytes, file_size: int, path: str, limits: HeaderLimits = BASE) -> SafetensorsHeader:
    """Validate ``head`` (the first 8+N bytes of a file of ``file_size`` bytes) within ``limits``."""
    if file_size < 8 or len(head) < 8:
        _sniff_unsafe(head, path)
        raise InvalidSafetensors("file is too short to be safetensors", path, "re-save or re-download it")
    (n,) = struct.unpack("<Q", head[:8])
    if limits.max_bytes < n <= MAX_HEADER_BYTES and 8 + n <= file_size:
        raise InvalidSafetensors(f"header of {n:,} bytes is larger than {limits.kind} header may be "
                                 f"({limits.max_bytes:,})", path, "check that this is the right file")
    if n > MAX_HEADER_BYTES or 8 + n > file_size:
        _sniff_unsafe(head, path)
        raise InvalidSafetensors(
            f"header length {n} runs past the end of the {file_size}-byte file", path,
            "the file is truncated or not safetensors; re-save or re-download it",
        )
    raw = head[8 : 8 + n]
    if len(raw) < n:
        raise InvalidSafetensors("header is truncated", path, "re-save or re-download it")
    objects = [0]

    def counted_object(pairs):   # one call per JSON object: stops a huge header early
        objects[0] += 1
        if objects[0] > limits.max_tensors + 2:
            raise _TooManyTensors
        return _unique_object(pairs)

    try:
        doc = json.loads(raw.decode("utf-8"), object_pairs_hook=counted_object)
    except _TooManyTensors:
        doc = None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        _sniff_unsafe(head, path)
        raise InvalidSafetensors(f"header is not valid JSON: {exc}", path, "re-save or re-download it") from None
    if doc is None or (isinstance(doc, dict) and len(doc) - ("__metadata__" in doc) > limits.max_tensors):
        raise InvalidSafetensors(f"header lists more than {limits.max_tensors:,} tensors, more than "
                                 f"{limits.kind} holds", path, "check that this is the right file")
    if not isinstance(doc, dict):
        raise InvalidSafetensors("header is not a JSON object", path, "re-save or re-download it")

    metadata = doc.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise InvalidSafetensors("__metadata__ must map strings to strings", path, "re-save the file")

    data_size = file_size - 8 - n
    entries: list[TensorEntry] = []
    for name, spec in doc.items():
        where = f"{path}: tensor {name!r}"
        if not isinstance(spec, dict):
            raise InvalidSafetensors("tensor entry is not an object", where, "re-save the file")
        dtype, shape, offsets = spec.get("dtype"), spec.get("shape"), spec.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in DTYPE_SIZES:
            raise InvalidSafetensors(f"unknown dtype {dtype!r}", where, "re-save with a standard dtype")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise InvalidSafetensors(f"bad shape {shape!r}", where, "re-save the file")
        if (
            not isinstance(offsets, list) or len(offsets) != 2
            or not all(type(o) is int and o >= 0 for o in offsets) or offsets[0] > offsets[1]
        ):
            raise InvalidSafetensors(f"bad data_offsets {offsets!r}", where, "re-save the file")
        if not limits.empty_tensors and 0 in shape:
            raise InvalidSafetensors(f"tensor of shape {shape} holds no values", where,
                                     f"{limits.kind} has no empty tensors; re-save the file")
        expected = math.prod(shape) * DTYPE_SIZES[dtype]
        if offsets[1] - offsets[0] != expected:
            raise InvalidSafetensors(
                f"shape {shape} x {dtype} needs {expected} bytes but offsets span {offsets[1] - offsets[0]}",
                where, "the file is corrupt; re-save or re-download it",
            )
        entries.append(TensorEntry(name, dtype, tuple(shape), offsets[0], offsets[1]))

    # The format requires tensors to tile the data area exactly: no gaps, no overlap.
    cursor = 0
    for entry in sorted(entries, key=lambda e: (e.begin, e.end)):
        if entry.begin != cursor:
            kind = "overlap" if entry.begin < cursor else "leave a gap"
            raise InvalidSafetensors(
                f"tensor offsets {kind} at byte {entry.begin} ({entry.name!r})", path,
                "the file is corrupt; re-save or re-download it",
            )
        cursor = entry.end
    if cursor != data_size:
        problem = "run past" if cursor > data_size else "stop short of"
        raise InvalidSafetensors(
            f"tensor data should be {cursor} bytes but the file holds {data_size} ({problem} the end)", path,
            "the file is truncated or padded; re-save or re-download it",
        )
    return SafetensorsHeader(path, n, file_size, {e.name: e for e in entries}, dict(metadata))


def _read_head(fh: BinaryIO, file_size: int, path: str, limits: HeaderLimits) -> bytes:
    first = fh.read(8)
    if len(first) == 8:
        (n,) = struct.unpack("<Q", first)
        if n <= limits.max_bytes and 8 + n <= file_size:
            return first + fh.read(n)
    return first + fh.read(8)  # enough for the sniffing in parse_header


def read_header(path: str | os.PathLike, limits: HeaderLimits = BASE) -> SafetensorsHeader:
    """Read and validate the header of ``path``; reads 8+N bytes, no tensor data.
    ``limits``: BASE (a model's shard, the default) or ADAPTER."""
    path = str(path)
    try:
        with open_regular(path) as fh:
            size = os.fstat(fh.fileno()).st_size
            head = _read_head(fh, size, path, limits)
    except OSError as exc:
        raise InvalidSafetensors(f"cannot read file: {exc.strerror}", path, "check the path and permissions") from None
    return parse_header(head, size, path, limits)


def map_tensors(path: str | os.PathLike, limits: HeaderLimits = ADAPTER) -> tuple[SafetensorsHeader, dict]:
    """The validated header of ``path`` and read-only numpy views of its NUMPY_VIEWS
    tensors on one read-only memory map, header and map taken from the same descriptor:
    nothing is copied until it is used (safetensors' numpy reader copies every tensor,
    0.4 s of a 7B-shaped `hub combine`). A file truncated under the map would fault on
    access, as under safetensors' own reader, which maps files too; hub's store never
    rewrites a file in place."""
    import mmap

    import numpy as np

    path = str(path)
    try:
        with open_regular(path, buffering=0) as fh:
            size = os.fstat(fh.fileno()).st_size
            header = parse_header(_read_head(fh, size, path, limits), size, path, limits)
            mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as exc:
        raise InvalidSafetensors(f"cannot read file: {exc.strerror}", path, "check the path and permissions") from None
    views = {e.name: np.frombuffer(mapped, NUMPY_VIEWS[e.dtype], e.numel, header.data_start + e.begin).reshape(e.shape)
             for e in header.tensors.values() if e.dtype in NUMPY_VIEWS}
    return header, views


def read_header_and_hash(path: str | os.PathLike, sink=None, nonfinite: dict[str, int] | None = None,
                         limits: HeaderLimits = ADAPTER) -> tuple[SafetensorsHeader, str]:
    """Validate the header and sha256 the whole file in a single pass.

    ``sink`` (optional) receives every chunk read, so a caller can copy the file
    into the store while it is hashed: every byte is read once. ``nonfinite``
    (optional) receives tensor name -> number of NaN/Inf values, counted on the
    same chunks while they are in cache (see nonfinite_counts).
    """
    path = str(path)
    digest = hashlib.sha256()
    try:
        with open_regular(path, buffering=0) as fh:
            size = os.fstat(fh.fileno()).st_size
            head = _read_head(fh, size, path, limits)
            header = parse_header(head, size, path, limits)
            _pass_through(head, header, _chunks(fh, READ_CHUNK), digest.update, sink, nonfinite)
    except HubError:   # DiskFull from the sink is an OSError too: it is not a read failure
        raise
    except OSError as exc:
        raise InvalidSafetensors(f"cannot read file: {exc.strerror}", path, "check the path and permissions") from None
    return header, digest.hexdigest()


def stream_header_and_hash(buffers, size: int, path: str, sink, nonfinite: dict[str, int] | None = None,
                           limits: HeaderLimits = ADAPTER) -> tuple[SafetensorsHeader, str]:
    """read_header_and_hash for a file being written: ``buffers`` are its ``size`` bytes in
    order, the first one its header, all in memory (hub.formats.safetensors_layout). Each is
    given to ``sink`` (which writes it) while a thread hashes the same buffers meanwhile (sha256
    releases the GIL), so the digest is that of exactly the bytes written. The header passes the
    same checks as one read from a file, and the buffers must add up to ``size``."""
    import threading

    buffers = list(buffers)
    head = bytes(buffers[0]) if buffers else b""
    header = parse_header(head, size, path, limits)
    if len(head) != header.data_start:
        raise InvalidSafetensors("the first buffer is not the whole header", path, "please report this bug")
    digest = hashlib.sha256()
    hasher = threading.Thread(target=lambda: [digest.update(b) for b in buffers], name="hub-hash", daemon=True)
    hasher.start()
    try:
        written = _pass_through(head, header, buffers[1:], lambda b: None, sink, nonfinite)
    finally:
        hasher.join()
    if written != size:
        raise InvalidSafetensors(f"{written} bytes written where the header makes the file {size}", path,
                                 "please report this bug")
    return header, digest.hexdigest()


def _pass_through(head: bytes, header: SafetensorsHeader, chunks, update, sink=None,
                  nonfinite: dict[str, int] | None = None) -> int:
    """Give ``head`` and then the data area's ``chunks`` (in order) to ``update`` (a digest's)
    and ``sink``, counting NaN/Inf per tensor into ``nonfinite``; returns the bytes passed."""
    update(head)
    if sink:
        sink(head)
    scan = _NonfiniteScan(header) if nonfinite is not None else None
    pos = len(head) - header.data_start  # offset in the data area
    for chunk in chunks:
        update(chunk)
        if sink:
            sink(chunk)
        if scan is not None:
            scan.feed(pos, chunk)
        pos += len(chunk)
    if scan is not None:
        nonfinite.update(scan.counts)
    return header.data_start + pos


# dtype -> (unsigned integer view, exponent mask, mask without the sign bit): a value is
# NaN or Inf exactly when all its exponent bits are set, so integer bit tests find them
# without torch. F8_E4M3 (the "fn" variant) has no Inf and one NaN pattern per sign:
# S.1111.111. F8_E8M0 has no sign bit.
_NONFINITE_BITS = {
    "F16": ("<u2", 0x7C00, 0x7FFF), "BF16": ("<u2", 0x7F80, 0x7FFF), "F32": ("<u4", 0x7F800000, 0x7FFFFFFF),
    "C64": ("<u4", 0x7F800000, 0x7FFFFFFF), "F64": ("<u8", 0x7FF0000000000000, 0x7FFFFFFFFFFFFFFF),
    "F8_E5M2": ("u1", 0x7C, 0x7F), "F8_E4M3": ("u1", 0x7F, 0x7F), "F8_E8M0": ("u1", 0xFF, 0xFF),
}


class _NonfiniteScan:
    """Counts NaN/Inf per tensor in the data area as it streams past, in chunks of any
    size (an element split between two chunks is carried over)."""

    def __init__(self, header: SafetensorsHeader):
        import numpy as np

        self.np = np
        self.spans = sorted(
            (e.begin, e.end, e.name, np.dtype(_NONFINITE_BITS[e.dtype][0]), *_NONFINITE_BITS[e.dtype][1:])
            for e in header.tensors.values() if e.dtype in _NONFINITE_BITS and e.nbytes)
        self.next = 0
        self.carry = b""
        self.counts: dict[str, int] = {}
        # the usual adapter: every tensor of one float dtype, so a chunk can be tested whole
        dtypes = {e.dtype for e in header.tensors.values() if e.nbytes}
        self.uniform = self.spans[0][3:] if len(dtypes) == 1 and self.spans else None

    def feed(self, pos: int, chunk) -> None:
        """``chunk`` holds the data-area bytes [pos, pos + len(chunk)), fed in order."""
        stop = pos + len(chunk)
        if self.uniform and not self.carry and pos % self.uniform[0].itemsize == 0 \
                and len(chunk) % self.uniform[0].itemsize == 0:
            view, exp, absmask = self.uniform
            values = self.np.frombuffer(chunk, view)
            if not (values & values.dtype.type(absmask)).max(initial=0) >= exp:
                while self.next < len(self.spans) and self.spans[self.next][1] <= stop:
                    self.next += 1
                return
        while self.next < len(self.spans):
            begin, end, name, view, exp, absmask = self.spans[self.next]
            if begin >= stop:
                return
            lo, hi = max(begin, pos), min(end, stop)
            data = chunk[lo - pos:hi - pos]
            size = view.itemsize
            if self.carry:
                took = size - len(self.carry)
                self.carry += bytes(data[:took])
                data = data[took:]
                if len(self.carry) == size:
                    self._count(name, self.np.frombuffer(self.carry, view), exp, absmask)
                    self.carry = b""
            whole = len(data) // size * size
            if whole:
                self._count(name, self.np.frombuffer(data[:whole], view), exp, absmask)
            if whole < len(data):
                self.carry = bytes(data[whole:])
            if hi < end:
                return
            self.next += 1

    def _count(self, name: str, values, exp: int, absmask: int) -> None:
        exp, absmask = values.dtype.type(exp), values.dtype.type(absmask)
        # |bits| >= exponent mask <=> all exponent bits set; one cheap pass finds out
        # whether the exact count is needed at all (it almost never is)
        if (values & absmask).max() >= exp:
            bad = int(self.np.count_nonzero((values & exp) == exp))
            self.counts[name] = self.counts.get(name, 0) + bad


def nonfinite_counts(path: str | os.PathLike, header: SafetensorsHeader) -> dict[str, int]:
    """tensor name -> number of NaN/Inf values, for tensors that have any.

    Reads the data area in chunks (numpy bit tests, no torch); ``header`` must come from
    ``read_header`` of the same file. `hub add` counts during its hashing pass instead
    (read_header_and_hash(..., nonfinite=...)).
    """
    scan = _NonfiniteScan(header)
    if not scan.spans:
        return {}
    with open_regular(path, buffering=0) as fh:
        fh.seek(header.data_start)
        buf = bytearray(READ_CHUNK)
        view = memoryview(buf)
        pos = 0
        while got := fh.readinto(buf):
            scan.feed(pos, view[:got])
            pos += got
    return scan.counts


def _chunks(fh, size: int):
    """Yield views of successive reads into one reused buffer (valid until the next one)."""
    buf = bytearray(size)
    view = memoryview(buf)
    while True:
        got = fh.readinto(buf)
        if not got:
            return
        yield view[:got]


def hash_file(path: str | os.PathLike, sink=None) -> str:
    digest = hashlib.sha256()
    with open_regular(path, buffering=0) as fh:   # a FIFO never blocks, /dev/zero is refused
        # configs are a few KB: a 1 MiB buffer per file was most of the time `hub scan` spent on them
        for chunk in _chunks(fh, max(1, min(READ_CHUNK, os.fstat(fh.fileno()).st_size + 1))):
            digest.update(chunk)
            if sink:
                sink(chunk)
    return digest.hexdigest()


def write_file(path: str | os.PathLike, tensors: dict, metadata: dict[str, str] | None = None) -> None:
    """Write torch tensors atomically (hub.atomic)."""
    from safetensors.torch import save_file

    from hub.atomic import atomic_file

    with atomic_file(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
