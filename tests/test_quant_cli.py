"""Quantized bases and merges through the real click app: `hub base add` records the
bitsandbytes scheme, `hub check` reports it, `hub merge --requantize` stores the drift
report that `hub models NAME --json` shows, and every refusal is one line with an exit code."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.helpers import cli_json, registry_snapshot, run_cli

pytest.importorskip("bitsandbytes")


@pytest.fixture(scope="module")
def bases(artifacts, tmp_path_factory):
    from hub.demo.factory import make_bnb_base

    base = artifacts.base("llama")
    root = tmp_path_factory.mktemp("cli-bnb")
    adapter = artifacts.adapter("llama", "quant-cli", seed=7, r=4, lora_alpha=8, target_modules=["q_proj", "o_proj"])
    return {"full": base, "adapter": adapter, "nf4": make_bnb_base(base, root / "nf4", "nf4", True),
            "int8": make_bnb_base(base, root / "int8", "int8")}


def test_base_add_records_the_scheme_and_check_reports_it(bases):
    assert run_cli("base", "add", bases["nf4"], "--name", "tiny-nf4").exit_code == 0
    assert run_cli("base", "add", bases["int8"], "--name", "tiny-int8").exit_code == 0
    nf4 = cli_json("base", "show", "tiny-nf4")["quant_scheme"]
    assert nf4 == {"method": "nf4", "bits": 4, "blocksize": 64, "double_quant": True, "dtype": "float32",
                   "compute_dtype": "float32"}
    int8 = cli_json("base", "show", "tiny-int8")["quant_scheme"]
    assert int8["method"] == "int8" and int8["bits"] == 8 and int8["dtype"] == "float32"
    shown = run_cli("base", "show", "tiny-nf4")
    assert "bitsandbytes-4bit nf4 (block size 64, double quant, from float32" in shown.stdout
    assert run_cli("add", bases["adapter"], "--name", "qa").exit_code == 0
    report = cli_json("check", "qa", "--base", "tiny-nf4")
    assert report["compatible"] is True
    quantized = [f for f in report["findings"] if f["code"] == "QUANTIZED_BASE"]
    assert quantized and "nf4, block size 64, double quantization, stored from float32" in quantized[0]["message"]


def test_requantized_merge_records_the_drift_report(bases, tmp_path):
    assert run_cli("base", "add", bases["nf4"], "--name", "tiny-nf4").exit_code == 0
    assert run_cli("add", bases["adapter"], "--name", "qa").exit_code == 0
    plan = cli_json("merge", "--base", "tiny-nf4", "qa", "--out", tmp_path / "m", "--requantize", "--dry-run")
    assert plan["plan"]["quantization"]["mode"] == "dequantize" and plan["plan"]["quantization"]["requantize"]
    assert not (tmp_path / "m").exists()
    text = run_cli("merge", "--base", "tiny-nf4", "qa", "--out", tmp_path / "m", "--requantize")
    assert text.exit_code == 0, text.stderr
    assert "drift over 4 adapted weight(s)" in text.stdout and "adapter effect kept" in text.stdout
    record = cli_json("models", "m")
    drift = record["drift"]
    assert drift["summary"]["modules"] == 4
    rows = {r["module"]: r for r in drift["modules"]}
    assert set(rows) == {f"model.layers.{i}.self_attn.{p}" for i in (0, 1) for p in ("q_proj", "o_proj")}
    for row in rows.values():
        assert row["adapter_change"] > 0 and row["requant_error"] > 0 and 0.5 < row["delta_kept"] < 1.5
        assert row["base_quant_error"] is None       # the original weights are not in a 4-bit checkpoint
    assert record["recipe"]["quantization"]["scheme"]["method"] == "nf4"
    assert json.loads((tmp_path / "m" / "config.json").read_text())["quantization_config"]["load_in_4bit"]
    assert "adapter effect kept" in run_cli("models", "m").stdout


def test_as_quantized_merge_on_the_cli(bases, tmp_path):
    doc = cli_json("merge", "--base", bases["full"], bases["adapter"], "--out", tmp_path / "q",
                   "--as-quantized", "fp4", "--blocksize", "128", "--double-quant", "--load-dtype", "bf16")
    q = doc["result"]["lineage"]["quantization"]
    assert q["mode"] == "as-quantized" and q["scheme"] == {
        "method": "fp4", "bits": 4, "blocksize": 128, "double_quant": True, "dtype": "bfloat16", "compute_dtype": None}
    assert doc["model"]["drift"]["summary"]["base_quant_error"]["min"] > 0


@pytest.mark.parametrize("args,message", [
    (["--as-quantized", "nf4", "--blocksize", "100"], "block size 100"),
    (["--requantize"], "--requantize needs a quantized base or --as-quantized"),
    (["--keep-unadapted"], "go with --as-quantized"),
    (["--as-quantized", "nf4", "--check-logits"], "use it with --requantize"),
])
def test_usage_errors(bases, tmp_path, hub_home, args, message):
    run_cli("list")   # the registry exists before, so the snapshot compares rows, not its creation
    before = registry_snapshot(hub_home)
    result = run_cli("merge", "--base", bases["full"], bases["adapter"], "--out", tmp_path / "o", *args)
    assert result.exit_code == 2 and message in result.stderr
    assert not (tmp_path / "o").exists() and registry_snapshot(hub_home) == before


def test_as_quantized_on_a_quantized_base_is_refused(bases, tmp_path):
    result = run_cli("merge", "--base", bases["nf4"], bases["adapter"], "--out", tmp_path / "o", "--as-quantized", "nf4")
    assert result.exit_code == 2 and "already quantized" in result.stderr


@pytest.mark.parametrize("layout", ["gptq", "awq", "gguf"])
def test_other_quantized_bases_are_refused_naming_what_works(bases, tmp_path, hub_home, layout):
    folder = tmp_path / layout
    if layout == "gguf":
        folder.mkdir()
        (folder / "model-Q4_K_M.gguf").write_bytes(b"GGUF" + bytes(60))
        (folder / "config.json").write_text("{}")
    else:
        shutil.copytree(bases["full"], folder)
        config = json.loads((folder / "config.json").read_text())
        config["quantization_config"] = {"quant_method": layout, "bits": 4, "group_size": 128}
        (folder / "config.json").write_text(json.dumps(config))
    run_cli("list")
    before = registry_snapshot(hub_home)
    result = run_cli("merge", "--base", folder, bases["adapter"], "--out", tmp_path / "o")
    assert result.exit_code != 0
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1
    assert layout.upper() in line and "bitsandbytes 4-bit (nf4, fp4) or 8-bit" in line and "full-precision" in line
    assert not (tmp_path / "o").exists() and registry_snapshot(hub_home) == before


FORGED = {   # what a forged quant_state of an unadapted packed weight holds -> what the one line says
    "block size 0": ({"blocksize": 0}, "block size outside"),
    "block size true": ({"blocksize": True}, "block size outside"),
    "no shape": ({"shape": []}, "no valid shape"),
    "huge shape": ({"shape": [10 ** 13, 64]}, "no valid shape"),
    "other shape": ({"shape": [64, 64]}, "does not hold what the quant_state"),
    "NaN offset": ({"nested_offset": float("nan")}, "no finite nested offset"),
    "other type": ({"quant_type": "fp4"}, "another 4-bit type"),
    "not JSON": (None, "is not a JSON object"),
}


def forged_merge_refused(bases, tmp_path, hub_home, kind: str, key: str, forge) -> str:
    """Copy the ``kind`` base, replace tensor ``key`` by ``forge(tensor)``, merge into it: the one
    line of the refusal, after checking that it exits 1 and leaves no output and the registry as it was."""
    from safetensors.torch import load_file, save_file

    folder = tmp_path / f"forged-{kind}"
    shutil.copytree(bases[kind], folder)
    tensors = load_file(folder / "model.safetensors")
    tensors[key] = forge(tensors[key])
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    run_cli("list")
    before = registry_snapshot(hub_home)
    result = run_cli("merge", "--base", folder, bases["adapter"], "--out", tmp_path / "o")
    assert result.exit_code == 1, result.stderr
    assert not (tmp_path / "o").exists() and registry_snapshot(hub_home) == before
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1, line
    return line


@pytest.mark.parametrize("forgery", list(FORGED))
def test_a_forged_quant_state_is_one_line_and_nothing_is_written(bases, tmp_path, hub_home, forgery):
    import torch

    edit, message = FORGED[forgery]

    def forge(tensor):
        state = json.loads(bytes(tensor.numpy()))
        raw = b"\xff{" if edit is None else json.dumps({**state, **edit}).encode()
        return torch.frombuffer(bytearray(raw), dtype=torch.uint8)

    # k_proj is not adapted: its packed weight is read and dequantized during the merge
    line = forged_merge_refused(bases, tmp_path, hub_home, "nf4",
                                "model.layers.0.self_attn.k_proj.weight.quant_state.bitsandbytes__nf4", forge)
    assert message in line and "k_proj" in line and "re-save" in line, line


def test_an_8bit_weight_with_a_forged_scb_is_one_line(bases, tmp_path, hub_home):
    line = forged_merge_refused(bases, tmp_path, hub_home, "int8", "model.layers.0.self_attn.k_proj.SCB",
                                lambda scb: scb[:-1].clone())    # one scale short of the rows
    assert "one scale per row" in line and "k_proj" in line, line
