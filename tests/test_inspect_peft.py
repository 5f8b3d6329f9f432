"""`hub show --json` reports what PEFT itself sees after loading the adapter."""

from __future__ import annotations

import jsonschema
import pytest
import torch

from hub.demo.factory import ADAPTER_KINDS
from hub.formats.adapter_config import load_schema
from tests.helpers import cli_json, run_cli

KINDS = sorted(ADAPTER_KINDS)


def peft_view(base_dir, adapter_dir) -> dict:
    """{module path: (r, alpha, scaling, in, out)} as PEFT reports it after loading."""
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    peft_model = PeftModel.from_pretrained(model, adapter_dir)
    out = {}
    for name, module in peft_model.named_modules():
        if isinstance(module, LoraLayer) and "default" in module.r:
            path = name.removeprefix("base_model.model.")
            out[path] = (module.r["default"], float(module.lora_alpha["default"]), float(module.scaling["default"]),
                         module.in_features, module.out_features)
    return out, peft_model.peft_config["default"]


@pytest.mark.parametrize("kind", KINDS)
def test_show_json_matches_peft(artifacts, kind):
    base, adapter = artifacts[kind]
    added = run_cli("add", adapter, "--name", kind)
    assert added.exit_code == 0, added.stderr
    record = cli_json("show", kind)
    jsonschema.validate(record, load_schema("adapter_record.schema.json"))

    modules, config = peft_view(base, adapter)
    assert set(record["modules"]) == set(modules)
    for path, (r, alpha, scaling, in_f, out_f) in modules.items():
        got = record["modules"][path]
        assert (got["r"], got["alpha"], got["in_features"], got["out_features"]) == (r, alpha, in_f, out_f), path
        assert got["scaling"] == pytest.approx(scaling)
    assert record["r"] == config.r
    assert record["lora_alpha"] == config.lora_alpha
    assert record["use_rslora"] == config.use_rslora
    assert record["use_dora"] == config.use_dora
    assert record["target_modules"] == sorted({p.rsplit(".", 1)[-1] for p in modules})
    assert record["modules_to_save"] == sorted(config.modules_to_save or [])


def test_list_json_items_follow_the_record_schema(artifacts):
    for kind in ("plain", "gpt2", "dora"):
        assert run_cli("add", artifacts[kind][1], "--name", kind).exit_code == 0
    items = cli_json("list")
    assert [i["name"] for i in items] == ["dora", "gpt2", "plain"]
    schema = load_schema("adapter_record.schema.json")
    for item in items:
        jsonschema.validate(item, schema)
        assert item["modules"], "list items carry the per-module table too"


def test_export_round_trips_bytes_and_loads_in_peft(artifacts, tmp_path):
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    base, adapter = artifacts["dora"]
    assert run_cli("add", adapter, "--name", "d").exit_code == 0
    out = tmp_path / "exported"
    result = run_cli("export", "d", out)
    assert result.exit_code == 0, result.stderr
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        assert (out / name).read_bytes() == (adapter / name).read_bytes()
    original, exported = load_file(adapter / "adapter_model.safetensors"), load_file(out / "adapter_model.safetensors")
    assert original.keys() == exported.keys()
    assert all(torch.equal(original[k], exported[k]) for k in original)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), out)
    with torch.no_grad():
        logits = model(torch.arange(8).unsqueeze(0)).logits
    assert torch.isfinite(logits).all()
    # exports are real copies: editing one never reaches the store
    (out / "adapter_config.json").write_text("{}")
    assert run_cli("verify", "d").exit_code == 0


def test_export_refuses_a_non_empty_folder(artifacts, tmp_path):
    assert run_cli("add", artifacts["plain"][1], "--name", "p").exit_code == 0
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = run_cli("export", "p", out)
    assert result.exit_code == 1
    assert "not empty" in result.stderr and "--overwrite" in result.stderr
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("kind", KINDS)
def test_inspect_without_hashing_reads_the_same_adapter(artifacts, tmp_path, kind):
    """hash_files=False (a combine's registered parents): the same modules, ranks and scalings from the
    header alone, and no hash claimed; tensor data it never reads may even be garbage."""
    import shutil

    from hub.inspect import inspect_adapter

    _, adapter = artifacts[kind]
    copy = tmp_path / "copy"
    shutil.copytree(adapter, copy)
    weights = copy / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-16:] = b"\xff" * 16                     # NaN bytes in the last tensor's data
    weights.write_bytes(bytes(data))
    full, quick = inspect_adapter(adapter), inspect_adapter(copy, hash_files=False)
    assert quick.modules == full.modules and quick.config == full.config and quick.dtype == full.dtype
    assert quick.sha256 == "" and all(f.sha256 == "" for f in quick.files)
    assert [f.size for f in quick.files] == [f.size for f in full.files]
    assert full.sha256 and inspect_adapter(copy).sha256 != full.sha256
