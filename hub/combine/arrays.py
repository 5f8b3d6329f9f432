"""The few array operations the factor-space maths needs, for numpy and for torch.

The low-rank methods (cat, linear, svd; hub.combine.lowrank) are written once against
these names and run on whichever arrays they are given: numpy arrays when every parent
is float32/float16/float64 (the CLI then never imports torch, whose import alone is
seconds), torch tensors otherwise (bf16 parents, the delta-space methods, surgery).
``ops(x)`` picks the adapter from the array's type without importing torch for numpy.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable

import numpy as np

from hub.formats.safetensors_header import NUMPY_VIEWS

# safetensors dtypes numpy holds exactly; with them the numpy path reads what torch would
NUMPY_DTYPES = frozenset(NUMPY_VIEWS)
_NUMPY_CODES = {np.dtype(view): code for code, view in NUMPY_VIEWS.items()}


class NumpyOps:
    name = "numpy"
    float32, float64 = np.float32, np.float64
    # numpy has no ormqr, so its QR forms Q (8-16 ms per 4096 x 64 factor): the float64
    # Gram/eigh route of hub.combine.lowrank (~3 ms per module) goes first
    gram_first = True

    @staticmethod
    def dtype(name: str):
        return np.dtype(name).type

    @staticmethod
    def astype(x, dtype):
        return x.astype(dtype, copy=False)

    @staticmethod
    def cat(xs, axis: int, dtype=None):
        return np.concatenate(xs, axis=axis, dtype=dtype)     # converting as it copies

    @staticmethod
    def householder(x) -> tuple[Any, Callable]:
        """(R, apply) of the thin QR x = Q R, with apply(y) = Q[:, :len(y)] @ y."""
        # LAPACK's column-major layout: half the time of a C-ordered input (8 vs 18 ms at 4096 x 64)
        q, r = np.linalg.qr(np.asfortranarray(x), mode="reduced")
        return r, lambda y: q[:, : y.shape[0]] @ y

    @staticmethod
    def svd(x):
        return np.linalg.svd(x, full_matrices=False)

    @staticmethod
    def eigh(x):
        return np.linalg.eigh(x)

    @staticmethod
    def norm(x) -> float:
        return float(np.linalg.norm(x))

    @staticmethod
    def finfo(dtype):
        return np.finfo(dtype)

    @staticmethod
    def zeros(n: int, dtype):
        return np.zeros(n, dtype=dtype)

    @staticmethod
    def equal(a, b) -> bool:
        return a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(a, b))

    @staticmethod
    def contiguous(x):
        return np.ascontiguousarray(x)

    @staticmethod
    def raw(x) -> tuple[str, tuple[int, ...], memoryview]:
        """(safetensors dtype, shape, the little-endian bytes in C order) of ``x``."""
        x = np.ascontiguousarray(x, dtype=x.dtype.newbyteorder("<"))
        return _NUMPY_CODES[x.dtype], x.shape, memoryview(x).cast("B")

    @staticmethod
    @contextmanager
    def single_threaded():
        """BLAS threads off for the duration (threadpoolctl); yields how many cores to use.
        OpenBLAS's own threads spin and collapse when other processes share the cores."""
        import os

        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            yield len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class TorchOps:
    name = "torch"
    gram_first = False                   # geqrf/ormqr keep Q implicit and cost what the Gram route does

    def __init__(self):
        import torch

        self.torch = torch
        self.float32, self.float64 = torch.float32, torch.float64
        self._codes = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
                       torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
                       torch.uint8: "U8", torch.bool: "BOOL", torch.float8_e5m2: "F8_E5M2",
                       torch.float8_e4m3fn: "F8_E4M3"}    # torch dtype -> safetensors dtype

    def dtype(self, name: str):
        return getattr(self.torch, name)

    @staticmethod
    def astype(x, dtype):
        return x.to(dtype)

    def cat(self, xs, axis: int, dtype=None):
        return self.torch.cat([x if dtype is None else x.to(dtype) for x in xs], dim=axis)

    def householder(self, x) -> tuple[Any, Callable]:
        # reflectors kept implicit (geqrf/ormqr): cheaper than forming Q
        a, tau = self.torch.geqrf(x)

        def apply(y):
            padded = y.new_zeros(a.shape[0], y.shape[1])
            padded[: y.shape[0]] = y
            return self.torch.ormqr(a, tau, padded)

        return a[: min(x.shape)].triu(), apply

    def svd(self, x):
        return self.torch.linalg.svd(x, full_matrices=False)

    def eigh(self, x):
        return self.torch.linalg.eigh(x)

    @staticmethod
    def norm(x) -> float:
        return float(x.norm())

    def finfo(self, dtype):
        return self.torch.finfo(dtype)

    def zeros(self, n: int, dtype):
        return self.torch.zeros(n, dtype=dtype)

    def equal(self, a, b) -> bool:
        return self.torch.equal(a, b)

    @staticmethod
    def contiguous(x):
        return x.detach().contiguous()

    def raw(self, x) -> tuple[str, tuple[int, ...], memoryview]:
        """(safetensors dtype, shape, the bytes in C order) of ``x`` (torch: little-endian hosts)."""
        flat = x.detach().cpu().contiguous().reshape(-1)
        return self._codes[x.dtype], tuple(x.shape), memoryview(flat.view(self.torch.uint8).numpy()).cast("B")

    @contextmanager
    def single_threaded(self):
        """Intra-op threads off for the duration; yields how many there were."""
        before = self.torch.get_num_threads()
        self.torch.set_num_threads(1)
        try:
            yield before
        finally:
            self.torch.set_num_threads(before)


NUMPY = NumpyOps()
_TORCH: list[TorchOps] = []


def torch_ops() -> TorchOps:
    if not _TORCH:
        _TORCH.append(TorchOps())
    return _TORCH[0]


def ops(x) -> NumpyOps | TorchOps:
    """The adapter for ``x``'s array library."""
    return NUMPY if isinstance(x, np.ndarray) else torch_ops()


def backend(name: str) -> NumpyOps | TorchOps:
    return NUMPY if name == "numpy" else torch_ops()
