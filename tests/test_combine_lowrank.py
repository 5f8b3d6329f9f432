"""svd and the delta-space methods on real PEFT adapters.

svd: equals a dense truncated SVD of the same weighted sum (PEFT's deltas) within
1e-4 relative, reports the retained energy, picks ranks by --energy.
ties / dare_linear / dare_ties / magnitude_prune: the merged delta equals
peft.utils.merge_utils on the same deltas with the same seed, and the written
adapter is that delta truncated to rank K."""

from __future__ import annotations

import pytest
import torch
from peft.utils import merge_utils

from hub.combine import Parent, combine, get_method, load_factors
from hub.combine.core import module_seed
from hub.combine.dare import dare_linear_merge, dare_ties_merge
from hub.combine.magnitude import magnitude_prune_merge
from hub.combine.ties import ties_merge
from hub.errors import UsageError
from test_combine_oracle import input_ids, logits_of, peft_deltas, rel_err, weighted_sum


def parents_of(*pairs):
    return [Parent(load_factors(folder, name=f"p{i}"), w) for i, (folder, w) in enumerate(pairs)]


def truncated(delta: torch.Tensor, k: int) -> tuple[torch.Tensor, float]:
    """Dense rank-k truncation (float64) and the energy it keeps."""
    U, S, Vh = torch.linalg.svd(delta.double(), full_matrices=False)
    return (U[:, :k] * S[:k]) @ Vh[:k], float((S[:k] ** 2).sum() / (S ** 2).sum())


@pytest.fixture(scope="module")
def trio(artifacts):
    base, plain = artifacts["plain"]
    _, rslora = artifacts["rslora"]
    rank4 = artifacts.adapter("llama", "rank4-qv", seed=61, r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"])
    return base, [(plain, 0.8), (rslora, -0.6), (rank4, 1.1)]


def test_svd_equals_dense_truncated_svd(trio, tmp_path):
    base, parents = trio
    k = 5
    result = combine(parents_of(*parents), "svd", {"rank": k})
    out = result.write(tmp_path / "out")
    exact = weighted_sum([(w, peft_deltas(base, f)) for f, w in parents])
    got = peft_deltas(base, out)
    reports = {m.path: m for m in result.modules}
    assert sorted(got) == sorted(exact)
    for path, delta in exact.items():
        want, energy = truncated(delta, k)
        assert rel_err(got[path], want) < 1e-4, path
        assert reports[path].rank == k
        assert reports[path].energy == pytest.approx(energy, rel=1e-5)
        # the reported error is the true distance to the exact sum
        assert reports[path].rel_error == pytest.approx(rel_err(got[path], delta), rel=1e-3)


def test_svd_with_full_rank_is_exact(trio, tmp_path):
    base, parents = trio
    out = combine(parents_of(*parents), "svd", {"rank": 64}).write(tmp_path / "out")
    exact = weighted_sum([(w, peft_deltas(base, f)) for f, w in parents])
    got = peft_deltas(base, out)
    assert max(rel_err(got[p], exact[p]) for p in exact) < 1e-5


def test_svd_energy_picks_rank_per_module(trio):
    base, parents = trio
    result = combine(parents_of(*parents), "svd", {"energy": 0.9})
    exact = weighted_sum([(w, peft_deltas(base, f)) for f, w in parents])
    for m in result.modules:
        S = torch.linalg.svdvals(exact[m.path])
        cum = torch.cumsum(S ** 2, 0) / (S ** 2).sum()
        assert m.rank == int((cum < 0.9).sum()) + 1
        assert m.energy >= 0.9
    capped = combine(parents_of(*parents), "svd", {"energy": 0.999, "rank": 3})
    assert {m.rank for m in capped.modules} == {3}


def test_svd_single_adapter_round_trips(artifacts, tmp_path):
    base, folder = artifacts["patterns"]
    result = combine(parents_of((folder, 1.0)), "svd")  # default rank: the parent's rank per module
    out = result.write(tmp_path / "out")
    want = peft_deltas(base, folder)
    got = peft_deltas(base, out)
    assert max(rel_err(got[p], want[p]) for p in want) < 1e-6
    assert {m.path: m.rank for m in result.modules} == {p: m.r for p, m in load_factors(folder).modules.items()}
    ids = input_ids(7)
    assert torch.allclose(logits_of(base, out, ids), logits_of(base, folder, ids), rtol=1e-6, atol=1e-6)


# --- delta-space methods against peft.utils.merge_utils ----------------------------------------------


def _peft_merge(method: str, deltas, weights, density, seed_for_module: int | None, majority="total"):
    if seed_for_module is not None:
        torch.manual_seed(seed_for_module)
    fn = getattr(merge_utils, method)
    if method in ("ties", "dare_ties"):
        return fn(deltas, weights, density, majority)
    return fn(deltas, weights, density)


@pytest.mark.parametrize("majority", ["total", "frequency"])
def test_merge_functions_match_peft(trio, majority):
    base, parents = trio
    weights = torch.tensor([w for _, w in parents], dtype=torch.float64)
    per_parent = [peft_deltas(base, f) for f, _ in parents]
    path = "model.layers.1.self_attn.q_proj"
    deltas = [d[path] for d in per_parent]
    seed = module_seed(7, path)
    gen = lambda: torch.Generator().manual_seed(seed)  # noqa: E731
    ours = {
        "ties": ties_merge(deltas, weights, 0.3, majority),
        "dare_linear": dare_linear_merge(deltas, weights, 0.4, gen()),
        "dare_ties": dare_ties_merge(deltas, weights, 0.4, gen(), majority),
        "magnitude_prune": magnitude_prune_merge(deltas, weights, 0.3),
    }
    density = {"ties": 0.3, "dare_linear": 0.4, "dare_ties": 0.4, "magnitude_prune": 0.3}
    for method, got in ours.items():
        random = method.startswith("dare")
        want = _peft_merge(method, deltas, weights, density[method], seed if random else None, majority)
        assert torch.equal(got, want), method


@pytest.mark.parametrize("method,params", [
    ("ties", {"density": 0.5}),
    ("ties", {"density": 0.5, "majority_sign_method": "frequency"}),
    ("dare_linear", {"density": 0.6, "seed": 3}),
    ("dare_ties", {"density": 0.6, "seed": 3}),
    ("magnitude_prune", {"density": 0.4}),
])
def test_delta_space_methods_end_to_end(trio, tmp_path, method, params):
    base, parents = trio
    k = 6
    result = combine(parents_of(*parents), method, {**params, "rank": k}, compute_dtype=torch.float64)
    out = result.write(tmp_path / "out")
    per_parent = [peft_deltas(base, f) for f, _ in parents]
    got = peft_deltas(base, out)
    reports = {m.path: m for m in result.modules}
    for path in sorted(set().union(*per_parent)):
        present = [(d[path], w) for d, (_, w) in zip(per_parent, parents) if path in d]
        merged = _peft_merge(method, [d for d, _ in present], torch.tensor([w for _, w in present], dtype=torch.float64),
                             params["density"],
                             module_seed(params.get("seed", 0), path) if method.startswith("dare") else None,
                             params.get("majority_sign_method", "total"))
        want, energy = truncated(merged, k)
        assert rel_err(got[path], want) < 1e-4, path
        assert reports[path].energy == pytest.approx(energy, rel=1e-6)


def test_dare_is_reproducible_and_seeded(trio):
    _, parents = trio
    a = combine(parents_of(*parents), "dare_ties", {"density": 0.5, "seed": 11})
    b = combine(parents_of(*parents), "dare_ties", {"density": 0.5, "seed": 11})
    c = combine(parents_of(*parents), "dare_ties", {"density": 0.5, "seed": 12})
    assert a.tensors.keys() == b.tensors.keys()
    assert all(torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors)
    assert not all(torch.equal(a.tensors[k], c.tensors[k]) for k in a.tensors)
    assert a.params["seed"] == 11


def test_declared_parameters_are_enforced(trio):
    _, parents = trio
    ps = parents_of(*parents)
    with pytest.raises(UsageError, match="needs density"):
        combine(ps, "ties")
    with pytest.raises(UsageError, match="takes no parameter seed"):
        combine(ps, "svd", {"seed": 1})
    with pytest.raises(UsageError, match="out of range"):
        combine(ps, "ties", {"density": 1.5})
    with pytest.raises(UsageError, match="one of"):
        combine(ps, "ties", {"density": 0.5, "majority_sign_method": "mode"})
    with pytest.raises(UsageError, match="unknown combination method"):
        combine(ps, "task_arithmetic")
    assert [p.name for p in get_method("dare_ties").params] == ["density", "rank", "energy",
                                                                 "majority_sign_method", "seed"]


@pytest.mark.parametrize("out_f,R,in_f", [(64, 20, 48), (10, 20, 30), (30, 20, 10), (200, 3, 150)])
def test_factored_svd_equals_dense_svd(out_f, R, in_f):
    from hub.combine.lowrank import factored_svd

    g = torch.Generator().manual_seed(out_f * R + in_f)
    B = torch.randn(out_f, R, dtype=torch.float64, generator=g)
    A = torch.randn(R, in_f, dtype=torch.float64, generator=g)
    dense = B @ A
    f = factored_svd(B, A)
    S = torch.linalg.svdvals(dense)[: f.S.numel()]
    assert torch.allclose(f.S, S, rtol=1e-10, atol=1e-10 * float(S[0]))
    k = min(3, f.S.numel())
    U, Vh = f.top(k)
    want, _ = truncated(dense, k)
    assert rel_err((U * f.S[:k]) @ Vh, want) < 1e-10
    assert torch.allclose(U.T @ U, torch.eye(k, dtype=U.dtype), atol=1e-12)


def test_results_do_not_depend_on_threads_and_threads_are_restored(trio):
    _, parents = trio
    before = torch.get_num_threads()
    a = combine(parents_of(*parents), "dare_linear", {"density": 0.5, "seed": 4, "rank": 3})
    assert torch.get_num_threads() == before
    torch.set_num_threads(1)
    try:
        b = combine(parents_of(*parents), "dare_linear", {"density": 0.5, "seed": 4, "rank": 3})
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors)
    with pytest.raises(UsageError):
        combine(parents_of(*parents), "ties", {"density": 2.0})
    assert torch.get_num_threads() == before
