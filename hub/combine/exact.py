"""``cat`` and ``linear``: the exact weighted sum of deltas.

Σ wᵢ·sᵢ·Bᵢ Aᵢ = [B₁ … Bₙ] @ [w₁s₁A₁; …; wₙsₙAₙ]: concatenating the factors, with
each parent's weight and scaling (alpha/r, alpha/√r for rsLoRA, per-module rank
and alpha patterns) folded into its A, represents the sum exactly, for any signs
and any mix of ranks. The result has rank Σ rᵢ and scaling 1.

PEFT's ``linear`` instead averages the A's and the B's separately, which adds
cross terms Bᵢ Aⱼ and needs equal ranks; here ``linear`` is the exact sum too
(the same as ``cat``) so that the name users know gives the answer they expect.
"""

from __future__ import annotations

import torch

from hub.combine.core import ModuleContext, ModuleResult, Term
from hub.combine.registry import Method, register


def stacked_factors(terms: list[Term], dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, A) with B @ A == Σ weight·scaling·Bᵢ Aᵢ; weight and scaling go into A (as PEFT's cat does)."""
    B = torch.cat([t.factors.B.to(dtype) for t in terms], dim=1)
    A = torch.cat([t.factors.A.to(dtype) * (t.weight * t.factors.scaling) for t in terms], dim=0)
    return B, A


def combine_cat(terms: list[Term], params: dict, ctx: ModuleContext) -> ModuleResult:
    B, A = stacked_factors(terms, ctx.compute_dtype)
    return ModuleResult(A=A, B=B, energy=1.0)


CAT = register(Method(
    name="cat",
    summary="exact weighted sum: concatenated factors, rank = sum of the parents' ranks",
    exact=True, params=(), combine=combine_cat,
))

LINEAR = register(Method(
    name="linear",
    summary="exact weighted sum (same as cat; unlike PEFT's linear it has no cross terms and allows mixed ranks)",
    exact=True, params=(), combine=combine_cat,
))
