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

import torch

from hub.combine.core import ModuleResult


@dataclass
class FactoredSVD:
    """The SVD of B @ A held as Householder QRs of B and Aᵀ plus the small core's SVD;
    :meth:`top` forms only the k singular vectors it is asked for."""
    S: torch.Tensor
    _qb: tuple[torch.Tensor, torch.Tensor]
    _qa: tuple[torch.Tensor, torch.Tensor]
    _u: torch.Tensor
    _vh: torch.Tensor

    def top(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(U[:, :k], Vh[:k]) of B @ A."""
        return _apply_q(*self._qb, self._u[:, :k]), _apply_q(*self._qa, self._vh[:k].T).T


def _apply_q(a: torch.Tensor, tau: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Q[:, :n] @ y for the Q that geqrf left in (a, tau), without forming Q."""
    padded = y.new_zeros(a.shape[0], y.shape[1])
    padded[: y.shape[0]] = y
    return torch.ormqr(a, tau, padded)


def factored_svd(B: torch.Tensor, A: torch.Tensor) -> FactoredSVD:
    """SVD of B @ A (B: out × R, A: R × in) from the factors, never forming out × in."""
    qb = torch.geqrf(B)                  # B = Q_B R_B, reflectors kept implicit (cheaper than forming Q)
    qa = torch.geqrf(A.T)                # Aᵀ = Q_A R_A
    rb = qb[0][: min(B.shape)].triu()
    ra = qa[0][: min(A.shape)].triu()
    u, s, vh = torch.linalg.svd(rb @ ra.T)
    return FactoredSVD(s, qb, qa, u, vh)


def lowrank_svd(B: torch.Tensor, A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Thin SVD of B @ A from the factors: U, S, Vh with U @ diag(S) @ Vh == B @ A."""
    f = factored_svd(B, A)
    U, Vh = f.top(f.S.shape[0])
    return U, f.S, Vh


def choose_rank(s: torch.Tensor, rank: int | None, energy: float | None, default: int, tol: float) -> int:
    """How many leading singular values to keep: by energy and/or rank, never the
    numerically-zero tail (values below ``tol``)."""
    nonzero = int((s > tol).sum())
    k = rank if rank is not None else (default if energy is None else nonzero)
    if energy is not None and nonzero:
        cum = torch.cumsum(s[:nonzero].double() ** 2, 0)
        k = min(k, int(torch.searchsorted(cum, energy * cum[-1] * (1 - 1e-12)).item()) + 1)
    return max(0, min(k, nonzero))


def truncate(U: torch.Tensor, S: torch.Tensor, Vh: torch.Tensor, k: int) -> ModuleResult:
    """Keep k triplets, splitting each singular value evenly between B and A (both
    factors then have the same scale, which suits half-precision storage and training)."""
    total = float((S.double() ** 2).sum())
    kept = float((S[:k].double() ** 2).sum())
    root = S[:k].sqrt()
    return ModuleResult(A=root[:, None] * Vh[:k], B=U[:, :k] * root, energy=kept / total if total > 0 else 1.0)


def zero_tolerance(S: torch.Tensor, shape: tuple[int, int], scale: float) -> float:
    """Singular values below this are rounding noise of a sum whose terms have
    norm up to ``scale`` (LAPACK's usual rank tolerance, relative to the inputs)."""
    return torch.finfo(S.dtype).eps * max(shape) * scale


def factor_dense(delta: torch.Tensor, rank: int | None, energy: float | None, default: int) -> ModuleResult:
    """Truncated SVD of a dense (out × in) delta in LoRA layout."""
    U, S, Vh = torch.linalg.svd(delta, full_matrices=False)
    scale = float(S[0]) if S.numel() else 0.0
    k = choose_rank(S, rank, energy, default, zero_tolerance(S, tuple(delta.shape), scale))
    return truncate(U, S, Vh, k)
