"""``magnitude_prune``: keep each delta's top entries by magnitude, then the
weighted sum; in delta space, then factored to rank K."""

from __future__ import annotations

import torch

from hub.combine.dense import DELTA_PARAMS, delta_space, prune_magnitude, weigh
from hub.combine.registry import Method, register


def magnitude_prune_merge(deltas: list[torch.Tensor], weights: torch.Tensor, density: float) -> torch.Tensor:
    stacked = torch.stack([prune_magnitude(d, density) for d in deltas])
    return weigh(stacked, weights).sum(dim=0)


MAGNITUDE_PRUNE = register(Method(
    name="magnitude_prune",
    summary="magnitude pruning of each delta, then the weighted sum; in delta space, factored to rank K",
    exact=False, space="delta", params=DELTA_PARAMS,
    combine=delta_space(lambda d, w, p, ctx: magnitude_prune_merge(d, w, p["density"])),
))
