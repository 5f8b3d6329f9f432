"""``dare_linear`` and ``dare_ties``: DARE (Yu et al. 2023) drops each delta entry
with probability 1 - density and rescales the rest by 1/density, then sums
(linear) or elects signs (ties). Masks come from a generator seeded per module
from --seed and the module path, so a combination is reproducible."""

from __future__ import annotations

import torch

from hub.combine.core import ModuleContext
from hub.combine.maths import delta_space, disjoint_merge, majority_sign_mask, prune_random, weigh


def dare_linear_merge(deltas: list[torch.Tensor], weights: torch.Tensor, density: float,
                      generator: torch.Generator) -> torch.Tensor:
    stacked = torch.stack([prune_random(d, density, generator) for d in deltas])
    return weigh(stacked, weights).sum(dim=0)


def dare_ties_merge(deltas: list[torch.Tensor], weights: torch.Tensor, density: float, generator: torch.Generator,
                    majority_sign_method: str = "total") -> torch.Tensor:
    stacked = torch.stack([prune_random(d, density, generator) for d in deltas])
    mask = majority_sign_mask(stacked, majority_sign_method)
    return disjoint_merge(weigh(stacked, weights), mask)


def _linear(deltas, weights, params: dict, ctx: ModuleContext):
    return dare_linear_merge(deltas, weights, params["density"], ctx.generator())


def _ties(deltas, weights, params: dict, ctx: ModuleContext):
    return dare_ties_merge(deltas, weights, params["density"], ctx.generator(), params["majority_sign_method"])


combine_dare_linear = delta_space(_linear)
combine_dare_ties = delta_space(_ties)
