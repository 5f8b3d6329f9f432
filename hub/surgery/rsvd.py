"""Randomized truncated SVD (Halko, Martinsson & Tropp 2011, "Finding structure with
randomness", Alg. 4.3/4.4: Gaussian sketch, re-orthonormalised power iterations), seeded.

Stated error. With k kept triplets and p = OVERSAMPLE extra samples, HMT Thm 10.5 bounds
the range Q found without power iterations by

    E ‖M − Q Qᵀ M‖_F  ≤  sqrt(1 + k / (p − 1)) · ‖M − M_k‖_F        (M_k: the best rank k)

i.e. within a factor 1.39 of the optimum for k = 16, p = 10; each of the n power
iterations applies (M Mᵀ) once more, raising every ratio σ_j/σ_k (j > k) to the power
2n + 1 (HMT Cor. 10.10 for the spectral norm), so the excess shrinks geometrically.
The achieved error is also measured exactly: the kept factors are U_k S_k V_kᵀ = U_k U_kᵀ M,
an orthogonal projection of M, so ‖M − U_k S_k V_kᵀ‖_F² = ‖M‖_F² − Σ_{i≤k} s_i², which is
what `hub extract` reports for every module.
"""

from __future__ import annotations

import torch

OVERSAMPLE = 10
POWER_ITERATIONS = 4


def randomized_svd(M: torch.Tensor, k: int, generator: torch.Generator, oversample: int = OVERSAMPLE,
                   power_iterations: int = POWER_ITERATIONS) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(U, S, Vh) with k columns / values / rows approximating M's top k triplets.
    Small matrices (k + oversample ≥ min(M.shape)) get the exact SVD."""
    m, n = M.shape
    q = k + oversample
    if q >= min(m, n):
        U, S, Vh = torch.linalg.svd(M, full_matrices=False)
        return U[:, :k], S[:k], Vh[:k]
    omega = torch.randn(n, q, generator=generator, dtype=M.dtype).to(M.device)
    Q = torch.linalg.qr(M @ omega).Q
    for _ in range(power_iterations):
        Q = torch.linalg.qr(M.T @ Q).Q
        Q = torch.linalg.qr(M @ Q).Q
    Ub, S, Vh = torch.linalg.svd(Q.T @ M, full_matrices=False)
    return (Q @ Ub)[:, :k], S[:k], Vh[:k]
