"""Where a streamed row piece is folded: the one module of the merge that knows CUDA.

    io = open_device(device)              # HostIO for "cpu", CudaIO for "cuda" / "cuda:N"
    buf = io.host_buffer(nbytes)          # the reader preads base bytes into it (pinned on CUDA)
    ticket = io.fold(rows, terms)         # rows (a view into buf) become W + Σ s·(L @ R), rounded once
    ok = io.wait(ticket)                  # the writer waits before writing rows' bytes

A term is ``(left, right, scaling)`` with ``left`` the piece's rows of B (or of Aᵀ for
Conv1D/embedding layouts) and ``right`` A (or Bᵀ), both fp32. ``wait`` returns False when a
merged value overflowed the weight's dtype where the base value was finite.

CPU (HostIO, the stand-in the tests run): folds in place, synchronously, in sub-blocks whose
fp32 copy stays in cache, so the dtype round trip costs no memory traffic; bf16 → fp32, one
fused GEMM per term (``addmm_``, bit-identical to PEFT's ``W += (B @ A) * s`` on CPU), → bf16.

CUDA (CudaIO): host buffers are pinned, so both copies are asynchronous: rows go to the device
on a copy stream, are folded on a compute stream as PEFT folds on a GPU (``delta = (B @ A) * s``
in fp32, added to the weight, rounded once) and come back on the copy stream; the next piece's
upload and the previous piece's download overlap this piece's fold. Tensors that cross streams
are recorded on the stream that uses them (``record_stream``), so the caching allocator never
hands their memory out while a copy is in flight.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

SUB_BLOCK_BYTES = 1 << 20       # fp32 scratch per CPU sub-block (measured: 1 MiB folds 15 % faster than 256 KiB here)
# A GEMM rounds a row of the result by the micro-tile it falls in (tail rows take another kernel),
# so rows are folded in blocks that start where the whole tensor's tiles start: then each element
# is computed as PEFT's one GEMM over the whole weight computes it, bit for bit. CPU blocks are
# multiples of SUB_ALIGN rows (BLAS tiles of 1-4, 6, 8, 12, 16, 24 rows divide it); streamed
# pieces are multiples of ROW_ALIGN (GPU tiles of up to 256 rows divide it too).
SUB_ALIGN = 48
ROW_ALIGN = 768
FINITE_MAX = {t: torch.finfo(t).max for t in (torch.float32, torch.float16, torch.bfloat16)}
# a finite weight plus a delta smaller than half an ulp at the dtype's largest value cannot round
# to Inf (max·eps/4 is that half ulp, or a hair under it): 16 for fp16, 2^119 for bf16, 2^103 for fp32
SAFE_DELTA = {t: torch.finfo(t).max * torch.finfo(t).eps / 4 for t in FINITE_MAX}


def open_device(device: str) -> HostIO | CudaIO:
    return HostIO() if device == "cpu" else CudaIO(device)


@dataclass
class Ticket:
    ok: bool = True
    event: object = None        # CUDA: recorded after the download
    flag: torch.Tensor | None = None   # CUDA: pinned bool, True when a value overflowed


def _fits(acc: torch.Tensor, dtype: torch.dtype) -> bool:
    """Every value of ``acc`` (fp32) is finite and rounds to a finite ``dtype`` value; conservative
    (values just above the dtype's max that would round down to it are sent to the exact check)."""
    lo, hi = torch.aminmax(acc)
    limit = FINITE_MAX[dtype]
    return -limit <= lo.item() and hi.item() <= limit    # NaN compares False


class HostIO:
    """Folding on the CPU, in place, in cache-sized sub-blocks (no pinned memory, no streams).
    Adapter factors are read with pread, not mapped (hub.merge.reading._AdapterFile)."""

    device = "cpu"

    def __init__(self, sub_block_bytes: int | None = None):
        self.sub_block_bytes = sub_block_bytes or SUB_BLOCK_BYTES
        self.scratch = torch.empty(0)

    def host_buffer(self, nbytes: int) -> torch.Tensor:
        return torch.empty(nbytes, dtype=torch.uint8)

    def prepare(self, terms: list[tuple[torch.Tensor, torch.Tensor, float]]):
        return terms

    def fold(self, rows: torch.Tensor, row0: int, terms) -> Ticket:
        n, cols = rows.shape
        step = max(SUB_ALIGN, self.sub_block_bytes // (4 * cols) // SUB_ALIGN * SUB_ALIGN)
        if self.scratch.numel() < step * cols:
            self.scratch = torch.empty(step * cols)
        # nearly always: the adapters' delta is provably too small to overflow, and the per-block
        # check (a reduction over every value, 10 % of the fold) is skipped
        check = not _delta_bound(terms, row0, n) < SAFE_DELTA[rows.dtype]
        for r in range(0, n, step):
            e = min(n, r + step)
            w = rows[r:e]
            acc = self.scratch[:(e - r) * cols].view(e - r, cols)
            acc.copy_(w)
            for left, right, scaling in terms:
                acc.addmm_(left[row0 + r:row0 + e], right, alpha=scaling)
            if check and not _fits(acc, rows.dtype) and not _exact_ok(w, acc):
                return Ticket(ok=False)
            w.copy_(acc)
        return Ticket()

    def wait(self, ticket: Ticket) -> bool:
        return ticket.ok


def _delta_bound(terms, row0: int, n: int) -> float:
    """An upper bound of |Σ s·(L @ R)| over rows [row0, row0 + n): |s| · max row-sum of |L| · max |R|,
    doubled for the GEMM's rounding. NaN or Inf (absurd factors) when it bounds nothing."""
    bound = 0.0
    for left, right, scaling in terms:
        rows = left[row0:row0 + n]
        if rows.numel() and right.numel():
            bound += abs(scaling) * rows.abs().sum(1).max().item() * right.abs().max().item()
    return 2 * bound


def _exact_ok(base: torch.Tensor, acc: torch.Tensor) -> bool:
    """The slow, exact check behind _fits: the rounded result is finite, or the base already was not."""
    return bool(torch.isfinite(acc.to(base.dtype)).all()) or not bool(torch.isfinite(base).all())


class CudaIO:
    """Folding on a CUDA device: pinned host buffers, a copy stream and a compute stream."""

    def __init__(self, device: str):
        self.device = torch.device(device)
        with torch.cuda.device(self.device):
            self.copy = torch.cuda.Stream(self.device)
            self.compute = torch.cuda.Stream(self.device)

    def host_buffer(self, nbytes: int) -> torch.Tensor:
        return torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)

    def prepare(self, terms):
        """The factors of one tensor, uploaded once for all its pieces (on the compute stream, which uses them)."""
        with torch.cuda.device(self.device), torch.cuda.stream(self.compute):
            return [(left.to(self.device), right.to(self.device), scaling) for left, right, scaling in terms]

    def fold(self, rows: torch.Tensor, row0: int, terms) -> Ticket:
        with torch.cuda.device(self.device):
            with torch.cuda.stream(self.copy):
                dev = torch.empty(rows.shape, dtype=rows.dtype, device=self.device)
                dev.copy_(rows, non_blocking=True)
                uploaded = torch.cuda.Event()
                uploaded.record(self.copy)
            self.compute.wait_event(uploaded)
            with torch.cuda.stream(self.compute):
                dev.record_stream(self.compute)
                base_finite = torch.isfinite(dev).all()
                acc = dev.float()     # dev itself when the weight is fp32: it is not needed after this
                for left, right, scaling in terms:   # PEFT's order: delta first, then one add
                    acc += (left[row0:row0 + rows.shape[0]] @ right) * scaling
                out = acc.to(rows.dtype)
                bad = base_finite & ~torch.isfinite(out).all()
                folded = torch.cuda.Event()
                folded.record(self.compute)
            self.copy.wait_event(folded)
            with torch.cuda.stream(self.copy):
                out.record_stream(self.copy)
                bad.record_stream(self.copy)
                rows.copy_(out, non_blocking=True)
                flag = torch.empty((), dtype=torch.bool, pin_memory=True)
                flag.copy_(bad, non_blocking=True)
                done = torch.cuda.Event()
                done.record(self.copy)
        return Ticket(event=done, flag=flag)

    def wait(self, ticket: Ticket) -> bool:
        ticket.event.synchronize()
        return not bool(ticket.flag)
