"""The float64 Gram route of the factored SVD (hub.combine.lowrank.gram_svd), which the
numpy path takes first: it equals a dense float64 SVD of B @ A on well- and
ill-conditioned stacks, hands the stacks whose Gram spectra float64 does not resolve
(a parent given twice, zero factors, R above a side) to the Householder route, and
`combine --method svd` stays equal to PEFT's weighted sum truncated densely in those
edge cases (the same adapter twice, cancelling, a zero adapter, negative weights, a
rank above the stack's rank)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_combine_lowrank import truncated
from test_combine_oracle import peft_deltas, rel_err, weighted_sum

from hub.combine import Parent, combine, load_factors
from hub.combine.lowrank import factored_svd, gram_svd, householder_svd, stacked_factors
from hub.combine.core import Term
from hub.combine.writer import lora_keys


def graded(rng, rows: int, cols: int, kappa: float) -> np.ndarray:
    """rows x cols float32 with singular values spread log-evenly over 1 .. 1/kappa."""
    r = min(rows, cols)
    u = np.linalg.qr(rng.standard_normal((rows, r)))[0]
    v = np.linalg.qr(rng.standard_normal((cols, r)))[0]
    return ((u * np.logspace(0, -np.log10(kappa), r)) @ v.T).astype(np.float32)


def dense_top(B: np.ndarray, A: np.ndarray, k: int) -> np.ndarray:
    """The oracle: float64 dense SVD of the float64 product, truncated to rank k."""
    u, s, vh = np.linalg.svd(B.astype(np.float64) @ A.astype(np.float64), full_matrices=False)
    return (u[:, :k] * s[:k]) @ vh[:k]


def rank_k(f, k: int) -> np.ndarray:
    U, Vh = f.top(k)
    return (U.astype(np.float64) * f.S[:k].astype(np.float64)) @ Vh.astype(np.float64)


def near_cancelling(rng, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """B = [B1, B1 + eps D], A = [A1; -(A1 + eps E)]: B @ A is O(eps) of |B| |A|."""
    B1, D = rng.standard_normal((2, 192, 16)).astype(np.float32) * 0.02
    A1, E = rng.standard_normal((2, 16, 160)).astype(np.float32) / 16
    return np.concatenate([B1, B1 + eps * D], 1), np.concatenate([A1, -(A1 + eps * E)], 0)


@pytest.mark.parametrize("kappa", [1.0, 1e2, 1e4])
def test_gram_route_equals_dense_svd(kappa):
    rng = np.random.default_rng(int(kappa))
    B, A = graded(rng, 256, 24, kappa) * 0.02, graded(rng, 24, 192, kappa)
    f = gram_svd(B, A)
    assert f is not None and f.S.dtype == np.float32
    s = np.linalg.svd(B.astype(np.float64) @ A.astype(np.float64), compute_uv=False)
    assert np.allclose(f.S, s[:24], rtol=1e-5, atol=1e-6 * s[0])
    for k in (1, 8, 24):
        want = dense_top(B, A, k)
        assert rel_err(torch.from_numpy(rank_k(f, k)), torch.from_numpy(want)) < 1e-6, k
    U, Vh = f.top(8)
    assert np.allclose(U.T.astype(np.float64) @ U, np.eye(8), atol=1e-6)
    assert Vh.flags.c_contiguous                   # written as is, no transposing copy


@pytest.mark.parametrize("eps", [1e-2, 1e-3])
def test_gram_route_on_nearly_cancelling_parents(eps):
    """Nearly the same adapter with opposite weights: the product is a small difference,
    which the float64 Gram route resolves at least as well as float32 Householder QRs."""
    B, A = near_cancelling(np.random.default_rng(3), eps)
    want = torch.from_numpy(dense_top(B, A, 8))
    f = gram_svd(B, A)
    assert f is not None
    gram_err = rel_err(torch.from_numpy(rank_k(f, 8)), want)
    assert gram_err < 1e-5
    assert gram_err <= rel_err(torch.from_numpy(rank_k(householder_svd(B, A), 8)), want)


def test_unresolved_stacks_take_the_householder_route():
    rng = np.random.default_rng(5)
    B1, A1 = graded(rng, 128, 8, 10.0), graded(rng, 8, 96, 10.0)
    cases = {
        "a parent twice": (np.concatenate([B1, B1], 1), np.concatenate([A1, 0.5 * A1], 0)),
        "zero factors": (np.concatenate([B1, np.zeros((128, 4), np.float32)], 1),
                         np.concatenate([A1, graded(rng, 4, 96, 1.0)], 0)),
        "R above out": (graded(rng, 6, 8, 1.0), A1),
        "all zero": (np.zeros((128, 8), np.float32), A1),
        "not finite": (np.full((128, 8), np.nan, np.float32), A1),
    }
    for name, (B, A) in cases.items():
        assert gram_svd(B, A) is None, name
    for name, (B, A) in list(cases.items())[:3]:      # the route taken instead still equals the dense SVD
        want = dense_top(B, A, 4)
        assert rel_err(torch.from_numpy(rank_k(factored_svd(B, A), 4)), torch.from_numpy(want)) < 1e-5, name


def test_torch_keeps_the_householder_route():
    """torch's geqrf/ormqr keep Q implicit; its factored SVD is unchanged (and still exact)."""
    g = torch.Generator().manual_seed(2)
    B, A = torch.randn(96, 12, generator=g), torch.randn(12, 80, generator=g)
    f = factored_svd(B, A)
    assert isinstance(f.S, torch.Tensor)
    assert torch.equal(f.S, householder_svd(B, A).S)


@pytest.fixture(scope="module")
def adapters(artifacts):
    base, plain = artifacts["plain"]                           # r 8, q/v
    _, rslora = artifacts["rslora"]                            # r 8 rsLoRA, q/k/v
    rank4 = artifacts.adapter("llama", "rank4-qv", seed=61, r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"])
    # PEFT's own initialisation: B = 0, so every delta is zero
    zero = artifacts.adapter("llama", "zero-qk", seed=7, r=4, lora_alpha=8, target_modules=["q_proj", "k_proj"],
                             init_lora_weights=True)
    return base, {"plain": plain, "rslora": rslora, "rank4": rank4, "zero": zero}


CASES = {   # parents (adapter, weight) and the rank asked for
    "the same adapter twice": ([("plain", 0.5), ("plain", 0.5), ("rank4", 1.1)], 5),
    "cancelling copies, rank above the stack's": ([("plain", 0.7), ("plain", -0.7), ("rank4", 1.0)], 6),
    "a zero adapter (alone on k_proj)": ([("plain", 0.8), ("zero", 1.5)], 5),
    "negative weights": ([("plain", -0.8), ("rslora", -0.6), ("rank4", -1.1)], 5),
    "rank above the stack's": ([("plain", 0.8), ("rank4", -0.3)], 40),
}


@pytest.mark.parametrize("case", CASES)
def test_numpy_svd_edge_cases_equal_peft_truncated(adapters, case, tmp_path):
    base, folders = adapters
    pairs, k = CASES[case]
    parents = [Parent(load_factors(folders[n], name=f"p{i}", arrays="numpy"), w) for i, (n, w) in enumerate(pairs)]
    result = combine(parents, "svd", {"rank": k})
    out = result.write(tmp_path / "out")
    exact = weighted_sum([(w, peft_deltas(base, folders[n])) for n, w in pairs])
    nonzero = {p: d for p, d in exact.items() if float(d.norm()) > 0}
    got = peft_deltas(base, out)
    assert sorted(got) == sorted(nonzero)            # zero modules are left out, the rest kept
    reports = {m.path: m for m in result.modules}
    for path, delta in nonzero.items():
        # PEFT forms each delta in float32: LAPACK's rank tolerance at that precision
        rank = int(torch.linalg.matrix_rank(delta, rtol=torch.finfo(torch.float32).eps * max(delta.shape)))
        want, energy = truncated(delta, min(k, rank))
        assert reports[path].rank == min(k, rank), path
        assert rel_err(got[path], want) < 1e-4, path
        assert reports[path].energy == pytest.approx(energy, rel=1e-5)


def test_edge_cases_use_both_routes(adapters):
    """The cases above exercise both routes: a duplicated parent's stack is unresolved,
    distinct parents' (negative weights included) go the Gram way."""
    _, folders = adapters
    path = "model.layers.0.self_attn.q_proj"

    def stack(*pairs):
        return stacked_factors([Term(w, load_factors(folders[n], arrays="numpy").modules[path]) for n, w in pairs])

    assert gram_svd(*stack(("plain", 0.7), ("plain", -0.7), ("rank4", 1.0))) is None
    assert gram_svd(*stack(("plain", 0.8), ("zero", 1.5))) is None
    assert gram_svd(*stack(("plain", -0.8), ("rslora", -0.6), ("rank4", -1.1))) is not None


def test_written_factors_are_row_major(adapters, tmp_path):
    _, folders = adapters
    parents = [Parent(load_factors(folders[n], name=n, arrays="numpy"), w) for n, w in [("plain", 1.0), ("rank4", 0.5)]]
    result = combine(parents, "svd", {"rank": 3})
    key_a, key_b = lora_keys(result.modules[0].path, "linear")
    assert result.tensors[key_a].flags.c_contiguous and result.tensors[key_b].flags.c_contiguous
