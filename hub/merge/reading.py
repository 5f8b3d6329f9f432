"""The reader stage of the merge pipeline (hub.merge.pipeline): base tensors and adapter factors
pread into private buffers (or, for streamed weights, into pieces of a fixed pool) and queued
for the fold, bounded by a byte budget; and the finiteness checks on what it reads."""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from hub.errors import HubError
from hub.merge import device_io
from hub.merge.plan import STREAM_POOL_BYTES, BiasOp, MergePlan, TensorTask

TORCH_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}
# packed weights of quantized bases are read too (hub.merge.quantized)
READ_DTYPES = {**TORCH_DTYPES, "U8": torch.uint8, "I8": torch.int8}
# streamed pieces: rows of one weight, about this many bytes, in a pool of about POOL_BYTES
# (at least 3 buffers, so that reading, folding and writing each have one)
PIECE_BYTES = 8 << 20
POOL_BYTES = STREAM_POOL_BYTES


class Budget:
    """Bytes in flight between reader and writer; one oversized tensor may always pass."""

    def __init__(self, limit: int, stop: threading.Event):
        self.limit, self.used, self.stop = limit, 0, stop
        self.cond = threading.Condition()

    def acquire(self, n: int) -> bool:
        with self.cond:
            while self.used and self.used + n > self.limit:
                if self.stop.is_set():
                    return False
                self.cond.wait(0.1)
            self.used += n
            return True

    def release(self, n: int) -> None:
        with self.cond:
            self.used -= n
            self.cond.notify_all()


DONE = object()


def put(q: queue.Queue, item, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def get(q: queue.Queue, stop: threading.Event):
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set():
                return DONE


@dataclass
class Loaded:
    task: TensorTask
    weight: torch.Tensor
    op_tensors: list[dict[str, torch.Tensor]]
    cost: int
    owned: bool = False     # weight lives in a buffer of our own (safe to add into)
    original: torch.Tensor | None = None   # the weight before a quantization round trip (drift report)


@dataclass
class Piece:
    """Rows [row0, row0 + rows.shape[0]) of a streamed weight, in a pool buffer."""
    task: TensorTask
    row0: int
    rows: torch.Tensor          # a view into buf, in the weight's dtype
    buf: torch.Tensor
    terms: list                 # (left, right, scaling) of the whole tensor, fp32
    first: bool
    ticket: object = None


class Pool:
    """A fixed set of host buffers (pinned on CUDA) shared by reader and writer."""

    def __init__(self, io, count: int, nbytes: int, stop: threading.Event):
        self.io, self.nbytes, self.stop = io, nbytes, stop
        self.free: queue.Queue = queue.Queue()
        self.made, self.count = 0, count

    def take(self, nbytes: int) -> torch.Tensor | None:
        if nbytes > self.nbytes:        # a single row wider than a piece: a buffer of its own
            return self.io.host_buffer(nbytes)
        if self.free.empty() and self.made < self.count:
            self.made += 1
            return self.io.host_buffer(self.nbytes)
        item = get(self.free, self.stop)
        return None if item is DONE else item

    def give(self, buf: torch.Tensor) -> None:
        if buf.numel() == self.nbytes:
            self.free.put(buf)


def piece_rows(task: TensorTask, piece_bytes: int) -> int:
    """Rows per streamed piece: about piece_bytes, a multiple of device_io.ROW_ALIGN (or the whole weight)."""
    align = device_io.ROW_ALIGN
    return max(align, piece_bytes // (task.in_bytes // task.shape[0] or 1) // align * align)


def pool_buffer_bytes(plan: MergePlan, piece_bytes: int) -> int:
    """The largest streamed piece of this plan (pieces are whole rows, aligned)."""
    sizes = [min(task.shape[0], piece_rows(task, piece_bytes)) * (task.in_bytes // task.shape[0])
             for task in plan.tasks if task.streamable]
    return max(sizes, default=0)


def _terms(task: TensorTask, adapter) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
    """(left, right, scaling) per LoRA op, so that the delta's rows are left[rows] @ right."""
    terms = []
    for op in task.ops:
        f = adapter(op.adapter)
        t = {"A": f.get_tensor(op.a_key), "B": f.get_tensor(op.b_key)}
        check_finite(task, op, t)
        a, b = t["A"].float(), t["B"].float()
        # Conv1D and embeddings store the transposed layout: ΔW = (B @ A)ᵀ = Aᵀ @ Bᵀ
        terms.append((a.T, b.T, op.scaling) if (op.embedding or op.fan_in_fan_out) else (b, a, op.scaling))
    return terms


def _pread_into(fd: int, view: memoryview, offset: int) -> None:
    done, nbytes = 0, view.nbytes
    while done < nbytes:
        got = os.preadv(fd, [view[done:]], offset + done)
        if got == 0:
            raise HubError("base model file ended early", f"fd {fd} at byte {offset + done}",
                           "the file changed or is truncated; re-download the base")
        done += got


def read_range(fd: int, offset: int, nbytes: int, dtype: str, shape: tuple[int, ...]) -> torch.Tensor:
    """One tensor's bytes straight from the base file into a fresh buffer.

    pread rather than safe_open's mmap: pages of a mapped shard stay in the process's
    resident set until the mapping goes, so a merge through mmap grows by every byte it
    touches; a private buffer is freed as soon as the tensor is written."""
    if nbytes == 0:
        return torch.empty(shape, dtype=READ_DTYPES[dtype])
    buf = bytearray(nbytes)
    _pread_into(fd, memoryview(buf), offset)
    return torch.frombuffer(buf, dtype=READ_DTYPES[dtype]).reshape(shape)


class _AdapterFile:
    """An adapter's tensors by key, each pread into its own buffer: a mapped file would keep every
    page it served in the resident set, so a 7 B all-linear adapter would add its size to the peak."""

    def __init__(self, path: Path):
        from hub.formats.safetensors_header import ADAPTER, read_header

        self.header = read_header(path, ADAPTER)
        self.fd = os.open(path, os.O_RDONLY)

    def get_tensor(self, key: str) -> torch.Tensor:
        e = self.header.tensors[key]
        return read_range(self.fd, self.header.data_start + e.begin, e.nbytes, e.dtype, e.shape)

    def close(self) -> None:
        os.close(self.fd)


def run_reader(plan: MergePlan, out: queue.Queue, budget: Budget, pool: Pool, stop: threading.Event,
            errors: list, piece_bytes: int = PIECE_BYTES) -> None:
    from hub.formats.adapter_weights import WEIGHTS_NAME

    base_dir = Path(plan.base.path)
    adapters: dict = {}
    fds: dict[str, int] = {}

    def adapter(idx):
        if idx not in adapters:
            adapters[idx] = _AdapterFile(Path(plan.adapters[idx].info.path) / WEIGHTS_NAME)
        return adapters[idx]

    def fd_of(file):
        if file not in fds:
            fds[file] = os.open(base_dir / file, os.O_RDONLY)
        return fds[file]

    try:
        for task in plan.tasks:
            if stop.is_set():
                return
            if task.raw_copy:
                if not put(out, task, stop):
                    return
                continue
            if task.streamable:
                if not _stream_task(task, adapter, fd_of(task.source_file), pool, out, stop, piece_bytes):
                    return
                continue
            cost = task.in_bytes + task.out_bytes
            if not budget.acquire(cost):
                return
            owned = task.replace is None
            original = None

            def read(file, begin, nbytes, dtype, shape):
                return read_range(fd_of(file), begin, nbytes, dtype, shape)

            if task.replace is not None:
                weight = adapter(task.replace.adapter).get_tensor(task.replace.key)
            elif task.packed is not None:     # a packed weight: dequantized here
                weight = task.packed.load(lambda p: read(p.file, p.begin, p.end - p.begin, p.dtype, p.shape))
            else:
                weight = read(task.source_file, task.begin, task.in_bytes, task.in_dtype, task.shape)
            if task.transform is not None:    # QLoRA round trip of a full-precision weight
                original = weight if task.original else None
                weight = task.transform(weight)
            op_tensors = []
            for op in task.ops:
                f = adapter(op.adapter)
                if isinstance(op, BiasOp):
                    op_tensors.append({"bias": f.get_tensor(op.key)})
                else:
                    t = {"A": f.get_tensor(op.a_key), "B": f.get_tensor(op.b_key)}
                    if op.magnitude_key:
                        t["magnitude"] = f.get_tensor(op.magnitude_key)
                    op_tensors.append(t)
            if not put(out, Loaded(task, weight, op_tensors, cost, owned, original), stop):
                return
        put(out, DONE, stop)
    except BaseException as exc:  # noqa: BLE001 - surfaced in the caller's thread
        errors.append(exc)
        stop.set()
    finally:
        for f in adapters.values():
            f.close()
        for fd in fds.values():
            os.close(fd)


def _stream_task(task: TensorTask, adapter, fd: int, pool: Pool, out: queue.Queue, stop: threading.Event,
                 piece_bytes: int) -> bool:
    terms = _terms(task, adapter)
    n, cols = task.shape
    row_bytes = task.in_bytes // n
    step = piece_rows(task, piece_bytes)
    for row0 in range(0, n, step):
        count = min(step, n - row0)
        buf = pool.take(count * row_bytes)
        if buf is None:
            return False
        view = memoryview(buf.numpy())[:count * row_bytes]
        _pread_into(fd, view, task.begin + row0 * row_bytes)
        rows = buf[:count * row_bytes].view(READ_DTYPES[task.in_dtype]).view(count, cols)
        if not put(out, Piece(task, row0, rows, buf, terms, row0 == 0), stop):
            return False
    return True


def overflow(task: TensorTask, dtype: torch.dtype) -> HubError:
    return HubError(f"merging gives values too large for {str(dtype).removeprefix('torch.')} in {task.name}",
                    "the adapter weights or lora_alpha", "lower the weights, or merge with --dtype fp32")


def check_finite(task: TensorTask, op, tensors: dict[str, torch.Tensor]) -> None:
    # the factors are tiny next to the weight: checking them, not the merged tensor, is free
    for role, t in tensors.items():
        if not torch.isfinite(t).all():
            raise HubError(f"{role} of {op.module} has NaN or Inf values", f"adapter #{op.adapter + 1} for {task.name}",
                           "the adapter is broken; check it with `hub verify`")
