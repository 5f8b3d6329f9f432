"""`hub resize`: each module of the result is a best rank-K approximation of the original's
scaled delta as PEFT computes it (Eckart–Young: the error is the norm of the dropped
singular values), for plain, rsLoRA, pattern and mixed-rank adapters; --energy keeps at
least the energy asked; a rank that does not drop writes nothing; bad input writes nothing."""

from __future__ import annotations

import json
import math

import pytest
import torch

from helpers import cli_json, registry_snapshot, run_cli
from test_combine_oracle import peft_deltas

KINDS = ["plain", "rslora", "patterns", "mixed"]


def adapter_of(artifacts, kind):
    if kind == "mixed":
        folder = artifacts.adapter("llama", "mixed-rank", seed=71, r=16, lora_alpha=24,
                                   target_modules=["q_proj", "v_proj", "o_proj", "up_proj"],
                                   rank_pattern={"v_proj": 6, "o_proj": 3}, alpha_pattern={"up_proj": 5})
        return artifacts.base("llama"), folder
    return artifacts[kind]


def optimum(delta: torch.Tensor, k: int) -> tuple[float, float]:
    """(Eckart–Young error ||Δ - Δ_k||_F, ||Δ||_F) from the singular values."""
    s = torch.linalg.svdvals(delta.double())
    return float(s[k:].norm()), float(s.norm())


def numerical_rank(m: torch.Tensor) -> int:
    """Rank at float32 precision (the written factors are float32)."""
    s = torch.linalg.svdvals(m.double())
    return int((s > 1e-5 * s[0]).sum()) if s.numel() and s[0] > 0 else 0


def add_warm(folder, name="src"):
    """Register and build the store's read view once (a cache, not a change)."""
    assert run_cli("add", folder, "--name", name).exit_code == 0
    from hub.service import Hub

    with Hub() as hub:
        hub.adapter_dir(name)


def assert_refused(result, words: str, home, before: dict) -> None:
    """Bad input: non-zero exit, one line on stderr naming the problem, registry and store unchanged."""
    assert result.exit_code != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert words in result.stderr, result.stderr
    assert registry_snapshot(home) == before


def export(name, tmp_path):
    out = tmp_path / f"export-{name}"
    assert run_cli("export", name, out).exit_code == 0
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_resize_is_eckart_young_optimal(artifacts, kind, tmp_path):
    base, folder = adapter_of(artifacts, kind)
    k = 3
    assert run_cli("add", folder, "--name", "src").exit_code == 0
    out = cli_json("resize", "src", "--rank", k, "--name", "small")
    assert out["changed"] and out["name"] == "small"
    before = peft_deltas(base, folder)
    after = peft_deltas(base, export("small", tmp_path))
    reports = {m["path"]: m for m in out["module_reports"]}
    assert sorted(after) == sorted(before) == sorted(reports)
    for path, delta in before.items():
        best, norm = optimum(delta, k)
        got = float((after[path] - delta).norm())
        assert numerical_rank(after[path]) <= k, path
        assert abs(got - best) <= 1e-5 * norm, (path, got, best)
        # the reported error is the measured one, relative to the original's norm
        assert reports[path]["rel_error"] == pytest.approx(got / norm, abs=1e-5)
        assert reports[path]["rank_after"] <= k
    total = math.sqrt(sum((r["rel_error"] * r["target_norm"]) ** 2 for r in reports.values())
                      / sum(r["target_norm"] ** 2 for r in reports.values()))
    assert out["total_rel_error"] == pytest.approx(total)
    # the result is a plain PEFT adapter with lineage and the error table in the registry
    shown = cli_json("show", "small")
    assert not shown["use_rslora"] and not shown["use_dora"]
    assert [(p["type"], p["name"]) for p in shown["lineage"]] == [("adapter", "src")]
    assert shown["recipe"]["operation"] == "resize"
    assert {e["path"] for e in shown["recipe"]["errors"]} == set(reports)
    text = run_cli("show", "small").stdout
    assert "errors" in text and "REL ERROR" in text


@pytest.mark.parametrize("kind", ["plain", "mixed"])
def test_energy_keeps_at_least_the_energy_asked(artifacts, kind, tmp_path):
    base, folder = adapter_of(artifacts, kind)
    assert run_cli("add", folder, "--name", "src").exit_code == 0
    out = cli_json("resize", "src", "--energy", 0.8, "--name", "e80")
    before = peft_deltas(base, folder)
    after = peft_deltas(base, export("e80", tmp_path))
    for path, delta in before.items():
        s = torch.linalg.svdvals(delta.double())
        energy = 1 - float((after[path] - delta).norm() ** 2 / delta.norm() ** 2)
        assert energy >= 0.8 - 1e-6, path
        # and it is the smallest such rank
        k = numerical_rank(after[path])
        assert float((s[: k - 1] ** 2).sum() / (s ** 2).sum()) < 0.8, path
    assert all(m["energy"] >= 0.8 - 1e-9 for m in out["module_reports"])
    capped = cli_json("resize", "src", "--energy", 0.999, "--rank", 2, "--name", "capped")
    assert max(m["rank_after"] for m in capped["module_reports"]) <= 2


def test_rank_that_does_not_drop_writes_nothing(artifacts, hub_home):
    _, folder = artifacts["plain"]
    add_warm(folder)
    before = registry_snapshot(hub_home)
    result = run_cli("resize", "src", "--rank", 64, "--json")
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["changed"] is False and out["name"] is None
    assert "nothing" in out["message"]
    assert registry_snapshot(hub_home) == before


@pytest.mark.parametrize("args,words", [
    (["--rank", 0], "--rank must be"),
    (["--energy", 1.5], "--energy must be"),
    (["--energy", "nan"], "--energy must be"),
    ([], "pass --rank"),
])
def test_bad_input_one_line_nothing_written(artifacts, hub_home, args, words):
    _, folder = artifacts["plain"]
    add_warm(folder)
    before = registry_snapshot(hub_home)
    assert_refused(run_cli("resize", "src", *args), words, hub_home, before)


def test_dora_is_refused_with_the_way_out(artifacts, hub_home):
    _, folder = artifacts["dora"]
    add_warm(folder, "d")
    before = registry_snapshot(hub_home)
    assert_refused(run_cli("resize", "d", "--rank", 2), "hub fix", hub_home, before)


def test_modules_to_save_are_kept(artifacts, tmp_path):
    base, folder = artifacts["modules_to_save"]
    assert run_cli("add", folder, "--name", "src").exit_code == 0
    cli_json("resize", "src", "--rank", 2, "--name", "small", "--out", tmp_path / "small")   # --out: a PEFT folder
    shown = cli_json("show", "small")
    assert shown["modules_to_save"] == ["lm_head"]
    from test_combine_oracle import load_peft

    model = load_peft(base, [("x", tmp_path / "small")])   # PEFT loads it
    assert any("modules_to_save" in n for n, _ in model.named_parameters())
