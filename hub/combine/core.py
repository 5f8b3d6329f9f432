"""The small types every method function shares: what it gets for one module and
what it returns."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, TypeVar

from hub.combine.arrays import NumpyOps, TorchOps, torch_ops
from hub.combine.factors import ModuleFactors


@dataclass(frozen=True)
class Term:
    """One parent's contribution to one module: ``weight * factors.delta()``."""
    weight: float
    factors: ModuleFactors
    parent: str = ""


@dataclass
class ModuleContext:
    path: str
    seed: int | None = None
    compute_dtype: Any = None       # of the parents' array library; None: its float32

    def generator(self):
        """A torch generator seeded from (seed, module path): every module draws its own
        stream, so a result does not depend on which modules ran before it."""
        return torch_ops().torch.Generator().manual_seed(module_seed(self.seed or 0, self.path))


@dataclass
class ModuleResult:
    """New factors in LoRA layout with scaling 1: delta = B @ A."""
    A: Any                          # (k, in), numpy array or torch tensor
    B: Any                          # (out, k)
    # fraction of the target's squared Frobenius norm the factors keep; the target is the
    # exact weighted sum (cat, linear, svd) or the merged dense delta (ties, dare, ...)
    energy: float = 1.0

    @property
    def rank(self) -> int:
        return self.A.shape[0]

    @property
    def rel_error(self) -> float:
        """||target - B @ A||_F / ||target||_F, exact for a truncated SVD."""
        return max(0.0, 1.0 - self.energy) ** 0.5


T = TypeVar("T")
R = TypeVar("R")


def map_modules(fn: Callable[[T], R], items: Iterable[T], xp: NumpyOps | TorchOps | None = None) -> Iterator[R]:
    """``map(fn, items)`` in order, on a thread pool with single-threaded ops of ``xp``
    (default torch).

    Per-module work (QRs of out × R factors, r × r products) is too small for torch's
    intra-op threads, whose spin-waits collapse when other processes share the cores;
    independent modules on separate threads use the cores without that."""
    with (xp or torch_ops()).single_threaded() as workers, ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        yield from pool.map(fn, items)


def module_seed(seed: int, path: str) -> int:
    digest = hashlib.sha256(f"{seed}\0{path}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)
