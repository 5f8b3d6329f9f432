"""``ties``: TIES-merging (Yadav et al. 2023) in delta space: keep each delta's top
entries by magnitude, elect a sign per entry, average the weighted entries that
agree with it; then factor the result to rank K."""

from __future__ import annotations

import torch

from hub.combine.maths import delta_space, disjoint_merge, majority_sign_mask, prune_magnitude, weigh


def ties_merge(deltas: list[torch.Tensor], weights: torch.Tensor, density: float,
               majority_sign_method: str = "total") -> torch.Tensor:
    stacked = torch.stack([prune_magnitude(d, density) for d in deltas])
    mask = majority_sign_mask(stacked, majority_sign_method)
    return disjoint_merge(weigh(stacked, weights), mask)


combine_ties = delta_space(lambda d, w, p, ctx: ties_merge(d, w, p["density"], p["majority_sign_method"]))
