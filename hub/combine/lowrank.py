"""Low-rank maths shared by ``hub combine`` (svd and the delta-space methods) and
``hub resize`` / ``hub fix`` / ``hub extract``: the SVD of a product B @ A from its
factors, the rank choice by ``--rank`` / ``--energy``, and the truncation.

B @ A (B: out × R, A: R × in) = Q_B (R_B R_Aᵀ) Q_Aᵀ from Householder QRs of B and Aᵀ,
so the SVD of the small R × R core gives the exact singular triplets of the product
at O((out + in)·R²) cost with no out × in matrix formed. Keeping the top K is, by
Eckart–Young, the best rank-K approximation, with relative Frobenius error
sqrt(1 − retained energy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from hub.combine.arrays import ops
from hub.combine.core import ModuleResult, Term


def stacked_factors(terms: list[Term], dtype=None) -> tuple[Any, Any]:
    """(B, A) with B @ A == Σ weight·scaling·Bᵢ Aᵢ; weight and scaling go into A (as PEFT's cat does).
    ``dtype``: the arrays' float32 when not given."""
    xp = ops(terms[0].factors.A)
    dtype = xp.float32 if dtype is None else dtype
    B = xp.cat([xp.astype(t.factors.B, dtype) for t in terms], 1)
    A = xp.cat([xp.astype(t.factors.A, dtype) * (t.weight * t.factors.scaling) for t in terms], 0)
    return B, A


@dataclass
class FactoredSVD:
    """The SVD of B @ A held as thin QRs of B and Aᵀ plus the small core's SVD;
    :meth:`top` forms only the k singular vectors it is asked for."""
    S: Any
    _qb: Callable
    _qa: Callable
    _u: Any
    _vh: Any

    def top(self, k: int) -> tuple[Any, Any]:
        """(U[:, :k], Vh[:k]) of B @ A."""
        return self._qb(self._u[:, :k]), self._qa(self._vh[:k].T).T


def factored_svd(B, A) -> FactoredSVD:
    """SVD of B @ A (B: out × R, A: R × in) from the factors, never forming out × in."""
    xp = ops(B)
    rb, qb = xp.householder(B)           # B = Q_B R_B
    ra, qa = xp.householder(A.T)         # Aᵀ = Q_A R_A
    u, s, vh = xp.svd(rb @ ra.T)
    return FactoredSVD(s, qb, qa, u, vh)


def lowrank_svd(B, A) -> tuple[Any, Any, Any]:
    """Thin SVD of B @ A from the factors: U, S, Vh with U @ diag(S) @ Vh == B @ A."""
    f = factored_svd(B, A)
    U, Vh = f.top(f.S.shape[0])
    return U, f.S, Vh


def choose_rank(s, rank: int | None, energy: float | None, default: int, tol: float) -> int:
    """How many leading singular values to keep: by energy and/or rank, never the
    numerically-zero tail (values below ``tol``)."""
    values = [float(v) for v in s]      # at most a few hundred: plain floats, any array library
    nonzero = sum(v > tol for v in values)
    k = rank if rank is not None else (default if energy is None else nonzero)
    if energy is not None and nonzero:
        cum, total = [], 0.0
        for v in values[:nonzero]:
            total += v * v
            cum.append(total)
        target = energy * total * (1 - 1e-12)
        k = min(k, next(i for i, c in enumerate(cum) if c >= target) + 1)
    return max(0, min(k, nonzero))


def truncate(U, S, Vh, k: int) -> ModuleResult:
    """Keep k triplets, splitting each singular value evenly between B and A (both
    factors then have the same scale, which suits half-precision storage and training)."""
    squares = [float(v) ** 2 for v in S]
    total, kept = sum(squares), sum(squares[:k])
    root = S[:k] ** 0.5
    return ModuleResult(A=root[:, None] * Vh[:k], B=U[:, :k] * root, energy=kept / total if total > 0 else 1.0)


def zero_tolerance(S, shape: tuple[int, int], scale: float) -> float:
    """Singular values below this are rounding noise of a sum whose terms have
    norm up to ``scale`` (LAPACK's usual rank tolerance, relative to the inputs)."""
    return float(ops(S).finfo(S.dtype).eps) * max(shape) * scale


def factor_dense(delta, rank: int | None, energy: float | None, default: int) -> ModuleResult:
    """Truncated SVD of a dense (out × in) delta in LoRA layout."""
    U, S, Vh = ops(delta).svd(delta)
    scale = float(S[0]) if S.shape[0] else 0.0
    k = choose_rank(S, rank, energy, default, zero_tolerance(S, tuple(delta.shape), scale))
    return truncate(U, S, Vh, k)
