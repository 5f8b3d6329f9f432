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

from hub.combine.core import ModuleContext, ModuleResult, Term
from hub.combine.lowrank import stacked_factors


def combine_cat(terms: list[Term], params: dict, ctx: ModuleContext) -> ModuleResult:
    B, A = stacked_factors(terms, ctx.compute_dtype)
    return ModuleResult(A=A, B=B, energy=1.0)

