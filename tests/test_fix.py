"""`hub fix`: for a rank-32 adapter with --max-lora-rank 16, a DoRA adapter and a
modules_to_save adapter, `hub check NEW --runtime vllm` passes, PEFT loads NEW, each module
is within 1 % of the best error at its rank for the change it replaces, and the reported
errors equal the errors measured against PEFT's merged original on the same base."""

from __future__ import annotations

import json

import pytest
import torch

from helpers import cli_json, registry_snapshot, run_cli
from test_combine_oracle import load_base, load_peft, peft_deltas
from test_resize import assert_refused, add_warm, export, numerical_rank


def merged_changes(base, folder) -> dict[str, torch.Tensor]:
    """{module path: W_merged − W} as PEFT's merge_and_unload computes it, for changed weights."""
    merged = load_peft(base, [("a", folder)]).merge_and_unload().state_dict()
    ref = load_base(base).state_dict()
    return {k[: -len(".weight")]: v.double() - ref[k].double() for k, v in merged.items()
            if k.endswith(".weight") and not torch.equal(v, ref[k])}


def best_error(change: torch.Tensor, k: int) -> float:
    return float(torch.linalg.svdvals(change)[k:].norm())


def check_fixed(base, original, out, new_name, tmp_path, ranks):
    """The Must-show checks on one fixed adapter; ``ranks``: {module: rank it may have}."""
    check = run_cli("check", new_name, "--runtime", "vllm", "--json")
    assert check.exit_code == 0, check.stdout
    assert json.loads(check.stdout)["compatible"] is True
    targets = merged_changes(base, original)
    got = peft_deltas(base, export(new_name, tmp_path))           # PEFT loads it
    reports = {m["path"]: m for m in out["module_reports"]}
    assert set(got) == set(targets) == set(reports)
    for path, target in targets.items():
        k = ranks[path]
        assert numerical_rank(got[path]) <= k, path
        measured = float((got[path] - target).norm())
        best = best_error(target, k)
        assert measured <= 1.01 * best + 1e-6 * float(target.norm()), (path, measured, best)
        assert reports[path]["rel_error"] == pytest.approx(measured / float(target.norm()), rel=1e-3, abs=1e-6)
    return reports


def test_rank_32_to_vllm_max_rank_16(artifacts, tmp_path):
    base = artifacts.base("llama")
    folder = artifacts.adapter("llama", "rank32", seed=81, r=32, lora_alpha=64,
                               target_modules=["q_proj", "v_proj", "up_proj"])
    assert run_cli("add", folder, "--name", "big").exit_code == 0
    out = cli_json("fix", "big", "--runtime", "vllm", "--max-lora-rank", 16, "--name", "big-vllm")
    assert out["name"] == "big-vllm" and out["changed"]
    assert run_cli("check", "big", "--runtime", "vllm").exit_code == 0    # a warning: above the default 16
    reports = check_fixed(base, folder, out, "big-vllm", tmp_path, {p: 16 for p in peft_deltas(base, folder)})
    assert {r["action"] for r in reports.values()} == {"truncated"}
    assert any("--max-lora-rank 16" in line and "vllm serve" in line for line in out["serve_command"])


def test_dora_to_plain_lora_on_its_base(artifacts, tmp_path):
    base, folder = artifacts["dora"]
    assert run_cli("add", folder, "--name", "d").exit_code == 0
    out = cli_json("fix", "d", "--runtime", "vllm", "--base", base, "--name", "d-vllm")
    reports = check_fixed(base, folder, out, "d-vllm", tmp_path, {p: 4 for p in peft_deltas(base, folder)})
    assert {r["action"] for r in reports.values()} == {"dora_to_lora"}
    assert all(r["rel_error"] > 0 for r in reports.values())      # an approximation, and it says so
    shown = cli_json("show", "d-vllm")
    lineage = {p["type"]: p for p in shown["lineage"]}
    assert lineage["adapter"]["name"] == "d" and len(lineage["base"]["sha256"]) == 64
    assert not shown["use_dora"]


def test_modules_to_save_to_lora_on_registered_base(artifacts, tmp_path):
    base, folder = artifacts["modules_to_save"]
    assert run_cli("base", "add", base, "--name", "tiny").exit_code == 0
    assert run_cli("add", folder, "--name", "m").exit_code == 0
    out = cli_json("fix", "m", "--runtime", "vllm", "--name", "m-vllm")   # the registered base, found by shapes
    ranks = {p: 4 for p in merged_changes(base, folder)}
    reports = check_fixed(base, folder, out, "m-vllm", tmp_path, ranks)
    assert reports["lm_head"]["action"] == "saved_to_lora"
    assert not cli_json("show", "m-vllm")["modules_to_save"]
    assert out["total_rel_error"] is not None


def test_modules_to_save_without_base_are_dropped_and_said(artifacts):
    _, folder = artifacts["modules_to_save"]
    assert run_cli("add", folder, "--name", "m").exit_code == 0
    out = cli_json("fix", "m", "--runtime", "vllm", "--name", "m-vllm")
    dropped = [r for r in out["module_reports"] if r["action"] == "dropped"]
    assert [r["path"] for r in dropped] == ["lm_head"] and dropped[0]["rel_error"] == 1.0
    assert out["total_rel_error"] is None and any("--base" in n for n in out["notes"])
    assert run_cli("check", "m-vllm", "--runtime", "vllm").exit_code == 0


@pytest.mark.parametrize("kind,runtime", [("rslora", "llama.cpp"), ("patterns", "llama.cpp"), ("rslora", "ollama")])
def test_llama_cpp_folds_scaling(artifacts, kind, runtime, tmp_path):
    base, folder = artifacts[kind]
    assert run_cli("add", folder, "--name", "a").exit_code == 0
    codes = {"rslora": "LLAMACPP_RSLORA", "patterns": "LLAMACPP_ALPHA_PATTERN"}[kind]
    assert codes in {f["code"] for f in cli_json("check", "a", "--runtime", runtime, "--base", base)["findings"]}
    out = cli_json("fix", "a", "--runtime", runtime, "--name", "a-cpp")
    after = run_cli("check", "a-cpp", "--runtime", runtime, "--base", base, "--json")
    assert after.exit_code == 0
    assert {f["severity"] for f in json.loads(after.stdout)["findings"]} <= {"info"}
    before, after = peft_deltas(base, folder), peft_deltas(base, export("a-cpp", tmp_path))
    assert max(float((after[p] - before[p]).norm() / before[p].norm()) for p in before) < 1e-5
    assert all(r["rel_error"] < 1e-6 for r in out["module_reports"])


def test_peft_and_already_fine_write_nothing(artifacts, hub_home):
    _, folder = artifacts["plain"]
    add_warm(folder)
    before = registry_snapshot(hub_home)
    for runtime in ("peft", "vllm", "llama.cpp"):
        out = cli_json("fix", "src", "--runtime", runtime)
        assert out["changed"] is False and out["name"] is None, runtime
    assert registry_snapshot(hub_home) == before


@pytest.mark.parametrize("case", ["other-base", "bad-max-rank", "dora-no-base", "unknown-runtime", "out-in-home"])
def test_bad_input_one_line_nothing_written(artifacts, hub_home, case):
    kind = "dora" if case == "dora-no-base" else "plain"
    _, folder = artifacts[kind]
    add_warm(folder)
    other = artifacts.base("llama", hidden_size=96)
    args = {"other-base": ["--runtime", "vllm", "--base", other],
            "bad-max-rank": ["--runtime", "vllm", "--max-lora-rank", 7],
            "dora-no-base": ["--runtime", "vllm"],
            "unknown-runtime": ["--runtime", "tgi"],
            "out-in-home": ["--runtime", "vllm", "--max-lora-rank", 8, "--out", hub_home / "fixed"]}[case]
    before = registry_snapshot(hub_home)
    words = {"other-base": "does not fit", "bad-max-rank": "not a value vLLM accepts", "dora-no-base": "--base",
             "unknown-runtime": "unknown runtime", "out-in-home": "refusing to write"}[case]
    assert_refused(run_cli("fix", "src", *args), words, hub_home, before)


def test_every_runtime_check_knows_has_a_fix():
    from hub.plugins import BUILTIN
    from hub.surgery.runtimes import known

    assert set(BUILTIN["hub.runtimes"]) <= set(known())
