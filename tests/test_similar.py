"""Similarity from the factors equals the dense computation; sampled sign conflicts
estimate the exact rate; the sampling is seeded."""

from __future__ import annotations

import pytest
import torch

from hub.combine.factors import AdapterFactors, ModuleFactors, load_factors
from hub.combine.similarity import compare, inner, sign_conflict, similarity, sq_norm


def _module(path, out_f, in_f, r, scale, seed):
    g = torch.Generator().manual_seed(seed)
    return ModuleFactors(path, A=torch.randn(r, in_f, generator=g), B=torch.randn(out_f, r, generator=g),
                         scaling=scale)


def _adapter(name, modules):
    return AdapterFactors(name=name, info=None, modules={m.path: m for m in modules})


@pytest.mark.parametrize("shape,ra,rb", [((48, 80), 3, 7), ((130, 20), 16, 1), ((16, 16), 8, 8)])
def test_inner_products_from_factors_equal_dense(shape, ra, rb):
    a = _module("m", *shape, ra, 0.7, 1)
    b = _module("m", *shape, rb, -2.5, 2)
    da, db = a.delta(torch.float64), b.delta(torch.float64)
    assert inner(a, b) == pytest.approx(float((da * db).sum()), rel=1e-10)
    assert sq_norm(a) == pytest.approx(float((da * da).sum()), rel=1e-10)


def test_sign_conflict_exact_and_sampled():
    a = _module("big", 300, 400, 4, 1.0, 3)
    b = _module("big", 300, 400, 4, 1.0, 4)
    exact = float(((a.delta(torch.float64) * b.delta(torch.float64)) < 0).double().mean())
    full, was_exact = sign_conflict(a, b, samples=300 * 400, seed=0)
    assert was_exact and full == pytest.approx(exact, abs=1e-12)
    est, was_exact = sign_conflict(a, b, samples=20000, seed=0)
    assert not was_exact
    assert est == pytest.approx(exact, abs=0.03)  # stderr at n=20000 is about 0.0035
    assert sign_conflict(a, b, samples=20000, seed=0)[0] == est  # seeded
    # an adapter against its own negative conflicts everywhere, against itself nowhere
    neg = ModuleFactors("big", a.A, a.B, -a.scaling)
    assert sign_conflict(a, neg, 5000, 0)[0] == 1.0 and sign_conflict(a, a, 5000, 0)[0] == 0.0


def test_overall_cosine_counts_missing_modules_as_zero():
    shared_a, shared_b = _module("x", 32, 32, 4, 1.0, 5), _module("x", 32, 32, 4, 1.0, 5)  # identical
    only_b = _module("y", 32, 32, 4, 1.0, 6)
    pair = compare(_adapter("a", [shared_a]), _adapter("b", [shared_b, only_b]))
    n_shared, n_only = sq_norm(shared_b), sq_norm(only_b)
    assert pair.modules[0].cosine == pytest.approx(1.0)
    assert pair.cosine == pytest.approx(n_shared / (n_shared * (n_shared + n_only)) ** 0.5)
    assert (pair.shared_modules, pair.only_a, pair.only_b) == (1, 0, 1)
    assert pair.modules[1].cosine is None and pair.modules[1].sign_conflict is None


def test_similarity_of_real_adapters_matches_peft_deltas(artifacts):
    from test_combine_oracle import peft_deltas

    base, plain = artifacts["plain"]
    _, patterns = artifacts["patterns"]   # rank and alpha patterns: per-module scaling must be honoured
    report = similarity([load_factors(plain, "plain"), load_factors(patterns, "patterns")])
    da, db = peft_deltas(base, plain), peft_deltas(base, patterns)
    dot = sum(float((da[p] * db[p]).sum()) for p in set(da) & set(db))
    na = sum(float((d * d).sum()) for d in da.values())
    nb = sum(float((d * d).sum()) for d in db.values())
    assert report.pairs[0].cosine == pytest.approx(dot / (na * nb) ** 0.5, abs=1e-6)
    assert report.norms["patterns"] == pytest.approx(nb ** 0.5, rel=1e-6)
