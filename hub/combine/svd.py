"""``svd``: the best rank-K approximation of Σ wᵢ·Δᵢ, computed from the factors.

With B = [B₁ … Bₙ] (out × R) and A = [w₁s₁A₁; …; wₙsₙAₙ] (R × in), the sum is B @ A;
its SVD comes from the factors (hub.combine.lowrank, shared with `hub resize`).
"""

from __future__ import annotations

from hub.combine.arrays import ops
from hub.combine.core import ModuleContext, ModuleResult, Term
from hub.combine.lowrank import choose_rank, factored_svd, stacked_factors, truncate, zero_tolerance


def combine_svd(terms: list[Term], params: dict, ctx: ModuleContext) -> ModuleResult:
    xp = ops(terms[0].factors.A)
    dtype = xp.float32 if ctx.compute_dtype is None else ctx.compute_dtype
    # stacked straight into float64 where the Gram route goes first (it works in float64)
    B, A = stacked_factors(terms, xp.float64 if xp.gram_first else dtype)
    f = factored_svd(B, A, dtype)
    scale = max(abs(t.weight * t.factors.scaling) * xp.norm(t.factors.B) * xp.norm(t.factors.A)
                for t in terms)
    default = max(t.factors.r for t in terms)
    k = choose_rank(f.S, params.get("rank"), params.get("energy"), default,
                    zero_tolerance(f.S, (B.shape[0], A.shape[1]), scale))
    U, Vh = f.top(k)
    return truncate(U, f.S, Vh, k)

