"""hub's built-in combination methods, declared (hub.combine.declare): no torch, no maths.

Each names its per-module function as "module:function"; the maths lives in exact.py,
svd.py, ties.py, dare.py and magnitude.py over the shared helpers in maths.py and
lowrank.py. hub.plugins lists these under ``hub.methods`` exactly as it lists another
distribution's methods. Adding a method: one declaration here (or in a plugin) and its
maths module.
"""

from __future__ import annotations

from hub.combine.declare import Method, Param

RANK = Param("rank", int, "target rank K per module (default: the largest parent rank there)", minimum=1)
ENERGY = Param("energy", float, "per module, the smallest rank keeping this fraction of the squared "
               "Frobenius norm (capped by --rank when both are given)", minimum=0.0, maximum=1.0,
               exclusive_minimum=True)
DENSITY = Param("density", float, "fraction of each parent delta's entries kept, in [0, 1]",
                required=True, minimum=0.0, maximum=1.0)
MAJORITY = Param("majority_sign_method", str, "how the sign of each entry is elected", default="total",
                 choices=("total", "frequency"))
SEED = Param("seed", int, "seed of the random masks (per module: derived from the seed and the module path)",
             default=0, minimum=0)
DELTA_PARAMS = (DENSITY, RANK, ENERGY)
BOTH = ("torch", "numpy")   # the factor-space maths (hub.combine.lowrank) runs on either

CAT = Method(
    name="cat",
    summary="exact weighted sum: concatenated factors, rank = sum of the parents' ranks",
    exact=True, params=(), combine="hub.combine.exact:combine_cat",
    arrays=BOTH,
)

LINEAR = Method(
    name="linear",
    summary="exact weighted sum (same as cat; unlike PEFT's linear it has no cross terms and allows mixed ranks)",
    exact=True, params=(), combine="hub.combine.exact:combine_cat",
    arrays=BOTH,
)

SVD = Method(
    name="svd",
    summary="best rank-K approximation of the exact weighted sum, from the factors (no dense matrix)",
    exact=False, params=(RANK, ENERGY), combine="hub.combine.svd:combine_svd", arrays=BOTH,
)

TIES = Method(
    name="ties",
    summary="TIES: magnitude pruning, sign election, disjoint mean; in delta space, then factored to rank K",
    exact=False, space="delta", params=(*DELTA_PARAMS, MAJORITY), combine="hub.combine.ties:combine_ties",
)

DARE_LINEAR = Method(
    name="dare_linear",
    summary="DARE: random drop and rescale, then weighted sum; in delta space, factored to rank K; seeded",
    exact=False, space="delta", params=(*DELTA_PARAMS, SEED), combine="hub.combine.dare:combine_dare_linear",
)

DARE_TIES = Method(
    name="dare_ties",
    summary="DARE drop and rescale, then TIES sign election; in delta space, factored to rank K; seeded",
    exact=False, space="delta", params=(*DELTA_PARAMS, MAJORITY, SEED), combine="hub.combine.dare:combine_dare_ties",
)

MAGNITUDE_PRUNE = Method(
    name="magnitude_prune",
    summary="magnitude pruning of each delta, then the weighted sum; in delta space, factored to rank K",
    exact=False, space="delta", params=DELTA_PARAMS, combine="hub.combine.magnitude:combine_magnitude_prune",
)

# in this order in `hub combine --help`; hub.plugins.BUILTIN["hub.methods"] names the same
# objects as entry points (a test keeps the two equal)
BUILTIN: tuple[Method, ...] = (CAT, LINEAR, SVD, TIES, DARE_LINEAR, DARE_TIES, MAGNITUDE_PRUNE)
