"""Low-rank maths shared by ``hub combine`` (svd and the delta-space methods) and
``hub resize`` / ``hub fix`` / ``hub extract``: the SVD of a product B @ A from its
factors, the rank choice by ``--rank`` / ``--energy``, and the truncation.

B @ A (B: out × R, A: R × in) = Q_B (R_B R_Aᵀ) Q_Aᵀ with orthonormal Q_B, Q_A, so the
SVD of the small R × R core gives the exact singular triplets of the product at
O((out + in)·R²) cost with no out × in matrix formed. Keeping the top K is, by
Eckart–Young, the best rank-K approximation, with relative Frobenius error
sqrt(1 − retained energy). Two routes to Q and the core: Householder QRs of B and Aᵀ
(any stack), and the float64 Gram matrices BᵀB and A Aᵀ (R × R, faster where the QR
must form Q, as numpy's does) whenever their spectra are resolved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from hub.combine.arrays import ops
from hub.combine.core import ModuleResult, Term


def stacked_factors(terms: list[Term], dtype=None) -> tuple[Any, Any]:
    """(B, A) with B @ A == Σ weight·scaling·Bᵢ Aᵢ; weight and scaling go into A (as PEFT's cat does).
    ``dtype``: the arrays' float32 when not given."""
    xp = ops(terms[0].factors.A)
    dtype = xp.float32 if dtype is None else dtype
    B = xp.cat([t.factors.B for t in terms], 1, dtype)
    A = xp.cat([t.factors.A for t in terms], 0, dtype)
    row = 0
    for t in terms:   # in place on the new array's blocks: no scaled copy of each parent's A
        A[row:row + t.factors.r] *= t.weight * t.factors.scaling
        row += t.factors.r
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


# float64 Gram eigenvalues carry errors of about eps·R·λ_max (1e-14 λ_max): a Gram matrix whose
# smallest eigenvalue is under this fraction of its largest (a parent given twice, zero
# factors, R above out or in) is not resolved, and the stack takes the Householder route
GRAM_RESOLVED = 1e-10


def factored_svd(B, A, dtype=None) -> FactoredSVD:
    """SVD of B @ A (B: out × R, A: R × in) from the factors, never forming out × in;
    results, and the Householder route, in ``dtype`` (default B's). The Gram route takes
    B and A in float64 without a copy (``stacked_factors(..., float64)``)."""
    xp = ops(B)
    dtype = B.dtype if dtype is None else dtype
    found = gram_svd(B, A, dtype) if xp.gram_first else None
    return found or householder_svd(xp.astype(B, dtype), xp.astype(A, dtype))


def householder_svd(B, A) -> FactoredSVD:
    """From Householder QRs B = Q_B R_B and Aᵀ = Q_A R_A: backward stable for any stack."""
    xp = ops(B)
    rb, qb = xp.householder(B)
    ra, qa = xp.householder(A.T)
    u, s, vh = xp.svd(rb @ ra.T)
    return FactoredSVD(s, qb, qa, u, vh)


def gram_svd(B, A, dtype=None) -> FactoredSVD | None:
    """From the float64 Gram matrices BᵀB = V_B Λ_B V_Bᵀ and A Aᵀ = V_A Λ_A V_Aᵀ (R × R):
    B @ A = P_B (Σ_B V_Bᵀ V_A Σ_A) P_Aᵀ with orthonormal P_B = B V_B Σ_B⁻¹ and
    P_A = Aᵀ V_A Σ_A⁻¹, so nothing out × R is orthogonalised and only the kept vectors
    are formed. Rounding in a small σ's direction is damped by that σ in the core, so
    the result stays at float64 accuracy down to GRAM_RESOLVED; None below it.
    Results come back in ``dtype`` (default B's)."""
    xp = ops(B)
    b, a = xp.astype(B, xp.float64), xp.astype(A, xp.float64)
    gb, ga = b.T @ b, a @ a.T
    # a finite trace bounds every entry (|G_ij|² <= G_ii G_jj); NaN/inf factors keep the old route
    if not all(math.isfinite(float(g.diagonal().sum())) for g in (gb, ga)):
        return None
    lb, vb = xp.eigh(gb)
    la, va = xp.eigh(ga)
    if not (_resolved(lb) and _resolved(la)):
        return None
    sb, sa = lb ** 0.5, la ** 0.5
    u, s, vh = xp.svd((sb[:, None] * (vb.T @ va)) * sa)
    tb, ta = vb / sb, va / sa                     # V Σ⁻¹, column by column
    dtype = B.dtype if dtype is None else dtype
    return FactoredSVD(
        xp.astype(s, dtype),
        lambda y: xp.astype(b @ (tb @ y), dtype),
        # P_A @ y formed as (yᵀ (V_A Σ_A⁻¹)ᵀ) A, k × in row-major, and handed back transposed
        # as top() expects: its .T is then that row-major array, with no copy
        lambda y: xp.astype((y.T @ ta.T) @ a, dtype).T,
        u, vh)


def _resolved(eigenvalues) -> bool:
    if eigenvalues.shape[0] == 0:
        return False
    smallest, largest = float(eigenvalues[0]), float(eigenvalues[-1])
    return largest > 0 and smallest > GRAM_RESOLVED * largest   # False for NaN too


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
