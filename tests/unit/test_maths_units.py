"""Combine maths on small tensors, against values worked out by hand or by torch's own SVD."""

from __future__ import annotations

import torch

from hub.combine.lowrank import choose_rank, factor_dense, lowrank_svd
from hub.combine.maths import disjoint_merge, majority_sign_mask, prune_magnitude, prune_random, weigh


def test_magnitude_pruning_keeps_the_largest_entries():
    t = torch.tensor([[1.0, -5.0], [3.0, 0.5]])
    assert torch.equal(prune_magnitude(t, 0.5), torch.tensor([[0.0, -5.0], [3.0, 0.0]]))
    assert prune_magnitude(t, 1.0) is t


def test_random_pruning_rescales_what_it_keeps():
    t = torch.full((64, 64), 2.0)
    out = prune_random(t, 0.25, torch.Generator().manual_seed(0))
    assert set(out.unique().tolist()) <= {0.0, 8.0}
    assert 0.15 < float((out != 0).float().mean()) < 0.35


def test_sign_election_and_disjoint_mean():
    stacked = torch.tensor([[1.0, -2.0, 3.0], [-4.0, -1.0, 1.0], [2.0, 0.0, -6.0]])
    mask = majority_sign_mask(stacked)                 # totals: -1, -3, -2 -> all negative
    assert mask.tolist() == [[False, True, False], [True, True, False], [False, False, True]]
    assert disjoint_merge(stacked, mask).tolist() == [-4.0, -1.5, -6.0]
    by_count = majority_sign_mask(stacked, "frequency")   # signs: +1, -2, +1
    assert by_count[:, 0].tolist() == [True, False, True]


def test_weigh_broadcasts_one_weight_per_parent():
    stacked = torch.ones(2, 3, 4)
    out = weigh(stacked, torch.tensor([2.0, -1.0]))
    assert out[0].eq(2).all() and out[1].eq(-1).all()


def test_factored_svd_equals_the_dense_svd():
    g = torch.Generator().manual_seed(1)
    B, A = torch.randn(12, 3, generator=g, dtype=torch.float64), torch.randn(3, 9, generator=g, dtype=torch.float64)
    U, S, Vh = lowrank_svd(B, A)
    torch.testing.assert_close(U @ torch.diag(S) @ Vh, B @ A)
    torch.testing.assert_close(S, torch.linalg.svdvals(B @ A)[:3])


def test_truncation_keeps_the_best_rank_k_and_reports_its_energy():
    delta = torch.diag(torch.tensor([4.0, 2.0, 1.0, 0.0]))
    result = factor_dense(delta, rank=2, energy=None, default=8)
    torch.testing.assert_close(result.B @ result.A, torch.diag(torch.tensor([4.0, 2.0, 0.0, 0.0])))
    assert abs(result.energy - 20 / 21) < 1e-6


def test_rank_choice_by_energy_never_keeps_the_zero_tail():
    s = torch.tensor([3.0, 2.0, 1.0, 0.0])
    assert choose_rank(s, None, 0.99, default=8, tol=1e-6) == 3
    assert choose_rank(s, None, 0.9, default=8, tol=1e-6) == 2      # 13/14 = 0.93
    assert choose_rank(s, 8, None, default=8, tol=1e-6) == 3
    assert choose_rank(s, 1, 0.99, default=8, tol=1e-6) == 1
