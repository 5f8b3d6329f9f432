"""``magnitude_prune``: keep each delta's top entries by magnitude, then the
weighted sum; in delta space, then factored to rank K."""

from __future__ import annotations

import torch

from hub.combine.maths import delta_space, prune_magnitude, weigh


def magnitude_prune_merge(deltas: list[torch.Tensor], weights: torch.Tensor, density: float) -> torch.Tensor:
    stacked = torch.stack([prune_magnitude(d, density) for d in deltas])
    return weigh(stacked, weights).sum(dim=0)


combine_magnitude_prune = delta_space(lambda d, w, p, ctx: magnitude_prune_merge(d, w, p["density"]))
