"""The small types every method function shares: what it gets for one module and
what it returns."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, TypeVar

import torch

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
    compute_dtype: torch.dtype = torch.float32

    def generator(self) -> torch.Generator:
        """A generator seeded from (seed, module path): every module draws its own
        stream, so a result does not depend on which modules ran before it."""
        return torch.Generator().manual_seed(module_seed(self.seed or 0, self.path))


@dataclass
class ModuleResult:
    """New factors in LoRA layout with scaling 1: delta = B @ A."""
    A: torch.Tensor                 # (k, in)
    B: torch.Tensor                 # (out, k)
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


@contextmanager
def single_threaded_torch() -> Iterator[int]:
    """Intra-op threads off for the duration; yields how many there were."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield before
    finally:
        torch.set_num_threads(before)


def map_modules(fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
    """``map(fn, items)`` in order, on a thread pool with single-threaded torch ops.

    Per-module work (QRs of out × R factors, r × r products) is too small for torch's
    intra-op threads, whose spin-waits collapse when other processes share the cores;
    independent modules on separate threads use the cores without that."""
    with single_threaded_torch() as workers, ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        yield from pool.map(fn, items)


def module_seed(seed: int, path: str) -> int:
    digest = hashlib.sha256(f"{seed}\0{path}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)
