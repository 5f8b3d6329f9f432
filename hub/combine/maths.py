"""Maths the delta-space methods share (ties, dare_*, magnitude_prune); the factor-space
ones (cat, linear, svd) share hub.combine.lowrank, which runs on numpy or torch.

These methods are elementwise on the dense delta (pruning by magnitude or at
random, sign election), so they form each module's delta Δᵢ = sᵢ·Bᵢ Aᵢ in the
base weight's layout, as PEFT's ``get_delta_weight`` does, merge, then factor
the merged delta back to rank K with a truncated SVD (retained energy reported).
The pruning and sign functions mirror ``peft.utils.merge_utils`` line for line
(tests compare them on the same inputs), except that random draws take an
explicit ``torch.Generator`` instead of the global one.
"""

from __future__ import annotations

from typing import Callable

import torch

from hub.combine.core import ModuleContext, ModuleResult, Term
from hub.combine.lowrank import factor_dense


def prune_magnitude(tensor: torch.Tensor, density: float) -> torch.Tensor:
    """Keep the int(density·n) largest-magnitude entries (PEFT: magnitude_based_pruning)."""
    if density >= 1:
        return tensor
    mask = torch.zeros_like(tensor).reshape(-1)
    k = int(density * tensor.numel())
    top = torch.topk(tensor.abs().reshape(-1), k=k, largest=True)
    mask[top[1]] = 1
    return tensor * mask.reshape(tensor.shape)


def prune_random(tensor: torch.Tensor, density: float, generator: torch.Generator, rescale: bool = True) -> torch.Tensor:
    """Keep each entry with probability ``density``, rescaled by 1/density (PEFT: random_pruning)."""
    if density >= 1:
        return tensor
    mask = torch.bernoulli(torch.full_like(tensor, density), generator=generator)
    pruned = tensor * mask
    return pruned / density if rescale else pruned


def majority_sign_mask(stacked: torch.Tensor, method: str = "total") -> torch.Tensor:
    sign = stacked.sign()
    if method == "total":
        magnitude = stacked.sum(dim=0)
    elif method == "frequency":
        magnitude = sign.sum(dim=0)
    else:
        raise ValueError(f"unknown majority sign method {method!r}")
    majority = torch.where(magnitude >= 0, 1, -1)
    return sign == majority


def disjoint_merge(weighted: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the parents that agree with the elected sign (zero where none does)."""
    kept = (weighted * mask).sum(dim=0)
    count = mask.sum(dim=0)
    return kept / torch.clamp(count, min=1.0)


def weigh(stacked: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return stacked * weights.view(weights.shape + (1,) * (stacked.dim() - weights.dim()))


MergeFn = Callable[[list[torch.Tensor], torch.Tensor, dict, ModuleContext], torch.Tensor]


def delta_space(merge: MergeFn):
    """Turn a merge over dense weight-layout deltas into a per-module method function."""

    def combine(terms: list[Term], params: dict, ctx: ModuleContext) -> ModuleResult:
        dtype = ctx.compute_dtype or torch.float32
        deltas = [t.factors.weight_delta(dtype) for t in terms]
        weights = torch.tensor([t.weight for t in terms], dtype=dtype)
        merged = merge(deltas, weights, params, ctx)
        if terms[0].factors.transposed:  # back to LoRA layout (out × in) for the factors
            merged = merged.T
        return factor_dense(merged, params.get("rank"), params.get("energy"), max(t.factors.r for t in terms))

    return combine
