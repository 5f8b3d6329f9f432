"""`hub extract` on a tiny base and a "fine-tuned" copy (base + a known low-rank delta +
small full-rank noise on every linear layer, plus a changed embedding row): each module's
error against the true difference is within 1 % of the best error at its rank; PEFT loads
the result; the relative logit error is reported and shrinks as the rank grows; bad input
writes nothing."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from helpers import cli_json, registry_snapshot, run_cli
from test_combine_oracle import peft_deltas
from test_resize import assert_refused, export


@pytest.fixture(scope="module")
def pair(artifacts):
    from hub.demo.factory import make_tuned

    base = artifacts.base("llama")
    tuned = artifacts.root / "tuned-llama"
    if not tuned.exists():
        make_tuned(base, tuned, rank=4, noise=1e-2, seed=5)
    return base, tuned


def true_changes(base, tuned) -> dict[str, torch.Tensor]:
    b, t = load_file(base / "model.safetensors"), load_file(tuned / "model.safetensors")
    return {k[: -len(".weight")]: (t[k].double() - b[k].double()) for k in b
            if k.endswith(".weight") and not torch.equal(t[k], b[k])}


def test_extract_is_near_optimal_and_peft_loads_it(pair, tmp_path):
    base, tuned = pair
    out = cli_json("extract", "--base", base, "--tuned", tuned, "--rank", 3, "--name", "ft")
    truth = true_changes(base, tuned)
    got = peft_deltas(base, export("ft", tmp_path))          # PEFT loads it
    reports = {m["path"]: m for m in out["module_reports"]}
    assert set(got) == {p for p in truth if truth[p].dim() == 2} == {p for p, r in reports.items()
                                                                     if r["action"] == "extracted"}
    for path, change in truth.items():
        k = reports[path]["rank_after"]
        best = float(torch.linalg.svdvals(change)[k:].norm())
        measured = float((got[path] - change).norm())
        assert measured <= 1.01 * best + 1e-6 * float(change.norm()), (path, measured, best)
        assert reports[path]["rel_error"] == pytest.approx(measured / float(change.norm()), rel=1e-3, abs=1e-6)
    # the changed embedding row is exactly rank 1, and extracted as such
    assert reports["model.embed_tokens"]["rank_after"] == 1 and reports["model.embed_tokens"]["rel_error"] < 1e-6
    shown = cli_json("show", "ft")
    kinds = {p["type"]: p for p in shown["lineage"]}
    assert set(kinds) == {"base", "tuned"} and all(len(p["sha256"]) == 64 for p in kinds.values())
    assert shown["recipe"]["operation"] == "extract" and len(shown["recipe"]["errors"]) == len(reports)
    assert "REL ERROR" in run_cli("show", "ft").stdout


def test_logit_error_is_reported_and_shrinks_with_rank(pair):
    base, tuned = pair
    errors = [cli_json("extract", "--base", base, "--tuned", tuned, "--rank", k, "--eval-logits",
                       "--name", f"ft{k}")["logit_error"] for k in (1, 2, 4)]
    assert errors[0] > errors[1] > errors[2] > 0, errors
    assert errors[2] < 0.1


def test_energy_and_targets(pair):
    base, tuned = pair
    out = cli_json("extract", "--base", base, "--tuned", tuned, "--energy", 0.9, "--target", "q_proj,v_proj",
                   "--name", "qv")
    extracted = [m for m in out["module_reports"] if m["action"] == "extracted"]
    assert {m["path"].rsplit(".", 1)[-1] for m in extracted} == {"q_proj", "v_proj"}
    assert all(m["energy"] >= 0.9 - 1e-9 for m in extracted)
    # every other changed tensor is reported, not silently dropped
    left = {m["path"] for m in out["module_reports"] if m["action"] == "left_out"}
    assert "model.layers.0.mlp.down_proj.weight" in left and "model.embed_tokens.weight" in left


def test_norms_are_reported_or_saved(artifacts, tmp_path):
    from hub.demo.factory import make_tuned

    base = artifacts.base("llama")
    tuned = make_tuned(base, tmp_path / "tuned-norms", rank=2, noise=0.0, seed=9, norms=True)
    out = cli_json("extract", "--base", base, "--tuned", tuned, "--rank", 2, "--name", "n1")
    left = [m for m in out["module_reports"] if m["action"] == "left_out"]
    assert left and all(m["path"].endswith("norm.weight") for m in left)
    saved = cli_json("extract", "--base", base, "--tuned", tuned, "--rank", 2, "--save-modules", "--name", "n2")
    assert {m["action"] for m in saved["module_reports"]} == {"extracted", "saved"}
    assert cli_json("show", "n2")["modules_to_save"]
    from test_combine_oracle import load_peft, logits

    ids = torch.randint(0, 128, (2, 12), generator=torch.Generator().manual_seed(1))
    from transformers import AutoModelForCausalLM

    want = logits(AutoModelForCausalLM.from_pretrained(tuned).eval(), ids)
    got = logits(load_peft(base, [("x", export("n2", tmp_path))]), ids)
    assert float((got - want).norm() / want.norm()) < 1e-4     # rank-2 delta, no noise: exact


@pytest.mark.parametrize("case", ["other-shape", "rank-too-high", "no-folder", "same-model", "out-over-tuned"])
def test_bad_input_one_line_nothing_written(pair, artifacts, hub_home, tmp_path, case):
    base, tuned = pair
    args = {"other-shape": ["--tuned", artifacts.base("llama", hidden_size=96), "--rank", 2],
            "rank-too-high": ["--tuned", tuned, "--rank", 100],
            "no-folder": ["--tuned", tmp_path / "missing", "--rank", 2],
            "same-model": ["--tuned", base, "--rank", 2],
            "out-over-tuned": ["--tuned", tuned, "--rank", 2, "--out", tuned]}[case]
    assert run_cli("base", "add", base, "--name", "tiny").exit_code == 0     # a registry with something in it
    before = registry_snapshot(hub_home)
    words = {"other-shape": "different", "rank-too-high": "above what", "no-folder": "does not exist",
             "same-model": "base model itself", "out-over-tuned": "refusing to write"}[case]
    assert_refused(run_cli("extract", "--base", "tiny", *args), words, hub_home, before)
