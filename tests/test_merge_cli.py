"""`hub merge` and `hub models` through the real click app: registry names resolved,
compatibility refused with findings, dry-run plan, lineage recorded, nothing left on failure."""

from __future__ import annotations

import json

import pytest
import torch

from tests.helpers import cli_json, run_cli
from tests.helpers import registry_snapshot as _snapshot


def registry_snapshot(home):
    """Rows and store files; views/ (hard-link folders the store builds on first read) left out."""
    snap = _snapshot(home)
    snap["files"] = {k: v for k, v in snap["files"].items() if not k.startswith("views/")}
    return snap


@pytest.fixture()
def registry(artifacts):
    for kind in ("plain", "patterns", "dora"):
        result = run_cli("add", artifacts[kind][1], "--name", kind)
        assert result.exit_code == 0, result.stderr
    result = run_cli("base", "add", artifacts.base("llama"), "--name", "llama")
    assert result.exit_code == 0, result.stderr
    return artifacts


def test_merge_registered_adapters_by_name_and_list_models(registry, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "mix"
    doc = cli_json("merge", "--base", "llama", "plain:0.7", "patterns:-0.4", "--out", out, "--device", "cpu",
                   "--shard-size", "40KB")
    assert doc["dry_run"] is False and doc["model"]["name"] == "mix"
    assert doc["result"]["tensors_touched"] == doc["plan"]["tensors_touched"] > 0
    assert len(doc["result"]["shards"]) > 1

    # equal to PEFT's weighted "cat" combination merged
    base_dir = registry.base("llama")
    ref = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), registry["plain"][1],
                                    adapter_name="a")
    ref.load_adapter(registry["patterns"][1], adapter_name="b")
    ref.add_weighted_adapter(["a", "b"], [0.7, -0.4], "mix", combination_type="cat")
    ref.set_adapter("mix")
    ref = ref.merge_and_unload()
    ours = AutoModelForCausalLM.from_pretrained(out)
    for name, value in ref.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[name], value)

    models = cli_json("models")
    assert [m["name"] for m in models] == ["mix"]
    rec = models[0]
    assert rec["base_name"] == "llama" and rec["path"] == str(out) and rec["exists"] is True
    assert [(a["name"], a["weight"]) for a in rec["adapters"]] == [("plain", 0.7), ("patterns", -0.4)]
    plain_sha = cli_json("show", "plain")["sha256"]
    assert rec["adapters"][0]["sha256"] == plain_sha
    assert rec["recipe"]["hub_version"] and rec["recipe"]["created_at"]
    assert any(p["type"] == "base" and p["name"] == "llama" for p in rec["lineage"])

    shown = run_cli("models", "mix")
    assert shown.exit_code == 0 and "plain:0.7" in shown.stdout and "patterns:-0.4" in shown.stdout
    listed = run_cli("models")
    assert "mix" in listed.stdout and "llama" in listed.stdout


def test_merge_with_base_folder_and_adapter_folder(registry, tmp_path):
    out = tmp_path / "m"
    result = run_cli("merge", "--base", registry.base("llama"), str(registry["rslora"][1]), "--out", out,
                     "--device", "cpu", "--name", "from-folders")
    assert result.exit_code == 0, result.stderr
    assert "recorded as from-folders" in result.stdout
    rec = cli_json("models", "from-folders")
    assert rec["adapters"][0]["name"] == str(registry["rslora"][1]) and rec["base_name"] == "llama"


def test_dry_run_prints_the_plan_and_writes_nothing(registry, tmp_path, hub_home):
    before = registry_snapshot(hub_home)
    doc = cli_json("merge", "--base", "llama", "dora", "--out", tmp_path / "x", "--device", "cpu", "--dry-run")
    plan = doc["plan"]
    assert doc["dry_run"] is True and "result" not in doc
    assert plan["tensors_touched"] == 4 and plan["device"] == "cpu"
    assert plan["bytes_written"] > 0 and plan["bytes_read"] > plan["bytes_written"] - 1
    assert plan["peak_memory_estimate"] > 0
    text = run_cli("merge", "--base", "llama", "dora", "--out", tmp_path / "x", "--dry-run", "--device", "cpu")
    assert text.exit_code == 0
    for word in ("tensors", "read", "written", "peak memory", "device", "dry run"):
        assert word in text.stdout
    assert not (tmp_path / "x").exists()
    assert registry_snapshot(hub_home) == before


def test_incompatible_base_is_refused_with_findings_and_nothing_changes(registry, tmp_path, hub_home):
    other = registry.base("llama", hidden_size=96)
    before = registry_snapshot(hub_home)
    result = run_cli("merge", "--base", other, "plain", "--out", tmp_path / "bad")
    assert result.exit_code == 1
    assert result.stderr.startswith("hub: error:") and len(result.stderr.strip().splitlines()) == 1
    assert "hub check" in result.stderr
    assert not (tmp_path / "bad").exists()
    assert registry_snapshot(hub_home) == before


def test_usage_errors_exit_2(registry, tmp_path):
    assert run_cli("merge", "--base", "llama", "plain", "--out", tmp_path / "o", "--shard-size", "lots").exit_code == 2
    assert run_cli("merge", "--base", "llama", "--out", tmp_path / "o").exit_code == 2          # no adapters
    assert run_cli("merge", "--base", "llama", "plain", "--out", tmp_path / "o", "--dtype", "int4").exit_code == 2
    missing = run_cli("merge", "--base", "llama", "nosuch", "--out", tmp_path / "o")
    assert missing.exit_code != 0 and "nosuch" in missing.stderr
    assert not (tmp_path / "o").exists()


def test_existing_output_and_taken_names(registry, tmp_path):
    out = tmp_path / "m"
    assert run_cli("merge", "--base", "llama", "plain", "--out", out, "--device", "cpu").exit_code == 0
    again = run_cli("merge", "--base", "llama", "plain", "--out", out, "--device", "cpu")
    assert again.exit_code == 1 and "--overwrite" in again.stderr
    redo = run_cli("merge", "--base", "llama", "plain:0.5", "--out", out, "--device", "cpu", "--overwrite")
    assert redo.exit_code == 0, redo.stderr
    models = cli_json("models")
    assert len(models) == 1 and models[0]["adapters"][0]["weight"] == 0.5
    elsewhere = run_cli("merge", "--base", "llama", "plain", "--out", tmp_path / "n", "--name", "m")
    assert elsewhere.exit_code == 1 and "already recorded" in elsewhere.stderr
    assert not (tmp_path / "n").exists()


def test_models_when_empty_and_missing_folder(registry, tmp_path):
    empty = run_cli("models")
    assert empty.exit_code == 0 and empty.stdout == ""
    assert cli_json("models") == []
    out = tmp_path / "gone"
    assert run_cli("merge", "--base", "llama", "plain", "--out", out, "--device", "cpu").exit_code == 0
    import shutil

    shutil.rmtree(out)
    assert cli_json("models")[0]["exists"] is False
    assert "(missing)" in run_cli("models").stdout
    assert run_cli("models", "nope").exit_code == 1


def test_help_texts():
    for args in (["merge", "--help"], ["models", "--help"]):
        result = run_cli(*args)
        assert result.exit_code == 0 and "Usage:" in result.stdout
    assert "--dry-run" in run_cli("merge", "--help").stdout


def test_merge_lineage_file_in_the_folder(registry, tmp_path):
    out = tmp_path / "lin"
    assert run_cli("merge", "--base", "llama", "dora:1", "--out", out, "--device", "cpu").exit_code == 0
    lineage = json.loads((out / "hub_merge.json").read_text())
    assert lineage["name"] == "lin" and lineage["adapters"][0]["name"] == "dora"
