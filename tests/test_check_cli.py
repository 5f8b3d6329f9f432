"""`hub check` and `hub base` through the real click app (CliRunner), on real tiny bases
and real PEFT adapters: the JSON contract, exit codes, stored verdicts and `--fits`."""

from __future__ import annotations

import json
import os

import pytest

from hub.findings import CODES
from tests.helpers import cli_json, copy_adapter, registry_snapshot, run_cli


@pytest.fixture()
def registry(artifacts, tmp_path):
    """Adapters registered first, bases after (and one adapter after the bases), so both
    ways of filling the stored verdicts run."""
    for kind in ("plain", "qwen2", "gpt2", "embedding"):
        assert run_cli("add", artifacts[kind][1], "--name", kind).exit_code == 0
    bases = {"llama": artifacts.base("llama"), "mha": artifacts.base("llama", num_key_value_heads=4),
             "gpt2": artifacts.base("gpt2"), "v160": artifacts.base("llama", vocab_size=160)}
    for name, path in bases.items():
        result = run_cli("base", "add", path, "--name", name)
        assert result.exit_code == 0, result.stderr
    assert run_cli("add", artifacts["rslora"][1], "--name", "rslora").exit_code == 0
    return bases


def check_json(*args):
    result = run_cli("check", *args, "--json")
    return result.exit_code, json.loads(result.stdout)


def test_check_json_contract_and_exit_codes(registry):
    code, doc = check_json("plain", "--base", "llama")
    assert code == 0 and doc["compatible"] is True
    assert set(doc) == {"compatible", "findings"}
    code, doc = check_json("plain", "--base", "mha")
    assert code == 1 and doc["compatible"] is False
    errors = [f for f in doc["findings"] if f["severity"] == "error"]
    assert errors and errors[0]["code"] == "KV_HEADS_MISMATCH"
    assert errors[0]["module"] == "model.layers.*.self_attn.v_proj"
    for f in doc["findings"]:
        assert set(f) == {"code", "severity", "module", "message"}
        assert f["code"] in CODES and CODES[f["code"]].severity == f["severity"]


def test_check_against_an_unregistered_folder(registry, artifacts):
    # a base folder never registered, and an adapter folder never registered
    code, doc = check_json(artifacts["plain"][1], "--base", artifacts.base("llama", hidden_size=96))
    assert code == 1 and {f["code"] for f in doc["findings"]} >= {"SHAPE_MISMATCH"}
    code, doc = check_json("gpt2", "--base", registry["gpt2"])          # registered base, given by path
    assert code == 0


def test_usage_errors_exit_2(registry):
    assert run_cli("check", "plain").exit_code == 2                       # against what?
    assert run_cli("check", "nope", "--base", "llama").exit_code == 2     # unknown adapter
    assert run_cli("check", "plain", "--base", "nope").exit_code == 2     # unknown base
    assert run_cli("check", "plain", "qwen2", "--base", "llama").exit_code == 2
    assert run_cli("check", "plain", "qwen2", "--method", "average").exit_code == 2
    assert run_cli("check", "plain", "--method", "linear").exit_code == 2  # one adapter cannot be combined
    assert run_cli("check", "plain", "--runtime", "tgi").exit_code == 2


def test_all_bases_and_fits_are_stored(registry):
    code, doc = check_json("plain", "--all-bases")
    assert code == 0 and sorted(doc["fits"]) == ["llama", "v160"]          # vocabulary does not touch q/v
    assert {b["base"] for b in doc["bases"]} == set(registry)
    code, doc = check_json("gpt2", "--all-bases")
    assert doc["fits"] == ["gpt2"]
    assert [r["name"] for r in cli_json("list", "--fits", "llama")] == ["embedding", "plain", "rslora"]
    # embed_tokens + q_proj have the same shapes with 4 key/value heads (PEFT agrees: test_compat_peft)
    assert [r["name"] for r in cli_json("list", "--fits", "mha")] == ["embedding", "qwen2"]
    assert [r["name"] for r in cli_json("list", "--fits", "v160")] == ["plain", "rslora"]
    assert [r["name"] for r in cli_json("list", "--fits", "gpt2")] == ["gpt2"]
    # embedding LoRA on a 160-token vocabulary: nowhere but its own base
    assert "embedding" not in [r["name"] for r in cli_json("list", "--fits", "v160")]
    bases = {b["name"]: b for b in cli_json("base", "list")}
    assert bases["llama"]["fits"] == 3                                     # plain, rslora, embedding
    # the registry resolved each adapter's base by shapes
    assert cli_json("show", "qwen2")["base"] == "mha"


def test_adapter_with_useless_base_name_is_matched_by_shapes(registry, artifacts, tmp_path):
    folder = copy_adapter(artifacts["qwen2"][1], tmp_path / "kaggle-run")
    cfg = json.loads((folder / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "/kaggle/input/qwen/transformers/1"
    (folder / "adapter_config.json").write_text(json.dumps(cfg))
    assert run_cli("add", folder, "--name", "kaggle").exit_code == 0
    shown = cli_json("show", "kaggle")
    assert shown["base_model"] == "/kaggle/input/qwen/transformers/1" and shown["base"] == "mha"
    code, doc = check_json("kaggle", "--all-bases")
    assert doc["fits"] == ["mha"]


def test_batch_check_every_adapter_against_one_base(registry):
    code, doc = check_json("--base", "llama")
    assert code == 1                                        # some registered adapters do not fit
    verdicts = {a["adapter"]: a["compatible"] for a in doc["adapters"]}
    assert verdicts == {"embedding": True, "gpt2": False, "plain": True, "qwen2": False, "rslora": True}
    assert sorted(doc["fits"]) == ["embedding", "plain", "rslora"]


def test_method_and_runtime(registry):
    code, doc = check_json("plain", "rslora", "--method", "linear")
    assert code == 0 and {"SCALING_DIFFERS", "RESULT_RANK"} <= {f["code"] for f in doc["findings"]}
    code, doc = check_json("plain", "gpt2", "--method", "cat")
    codes = {f["code"] for f in doc["findings"]}
    assert code == 1 and "NO_COMMON_BASE" in codes and "ARCHITECTURES_DIFFER" in codes
    code, doc = check_json("plain", "rslora", "--method", "peft:ties", "--rank", "8")
    assert code == 0
    code, doc = check_json("rslora", "--runtime", "llama.cpp")   # hub's GGUF export folds rsLoRA: a warning
    assert code == 0 and [f["code"] for f in doc["findings"]] == ["LLAMACPP_RSLORA"]
    code, doc = check_json("gpt2", "--runtime", "ollama")        # its registered base's architecture decides
    assert code == 1 and "LLAMACPP_ARCHITECTURE" in {f["code"] for f in doc["findings"]}
    code, doc = check_json("rslora", "--runtime", "vllm", "--base", "llama")
    assert code == 0


def test_human_output(registry):
    result = run_cli("check", "plain", "--base", "mha")
    assert result.exit_code == 1
    assert "plain does not fit base mha" in result.stdout and "KV_HEADS_MISMATCH" in result.stdout
    result = run_cli("check", "plain", "--all-bases")
    assert "plain fits 2 of 4 registered base(s)" in result.stdout


def test_base_commands(registry, artifacts, hub_home):
    shown = cli_json("base", "show", "gpt2")
    assert shown["architecture"] == "GPT2LMHeadModel" and shown["tie_word_embeddings"] is True
    assert shown["modules"]["transformer.h.0.attn.c_attn"] == {
        "kind": "conv1d", "in_features": 64, "out_features": 192, "dtype": "F32"}
    assert shown["modules"]["lm_head"]["tied_to"] == "transformer.wte.weight"
    text = run_cli("base", "show", "llama", "--modules").stdout
    assert "model.layers.0.self_attn.k_proj" in text
    # a name or a folder registered twice is refused, and nothing changes
    before = registry_snapshot(hub_home)
    assert run_cli("base", "add", registry["llama"], "--name", "again").exit_code == 1
    assert run_cli("base", "add", artifacts.base("qwen2"), "--name", "llama").exit_code == 1
    assert registry_snapshot(hub_home) == before
    assert run_cli("base", "add", artifacts.root / "no-such-folder").exit_code == 1
    # removing a base drops its verdicts; adapters fall back to another base they fit
    assert cli_json("show", "plain")["base"] == "llama"
    assert run_cli("base", "rm", "llama").exit_code == 0
    assert cli_json("show", "plain")["base"] == "v160"
    assert run_cli("list", "--fits", "llama").exit_code != 0
    assert "llama" not in {b["name"] for b in cli_json("base", "list")}


def test_every_command_has_help():
    for args in (["check"], ["base"], ["base", "add"], ["base", "list"], ["base", "show"], ["base", "rm"]):
        result = run_cli(*args, "--help")
        assert result.exit_code == 0 and "Usage:" in result.stdout


def test_batch_reuses_stored_verdicts_and_refresh_recomputes(registry, hub_home):
    from sqlalchemy import update

    from hub.registry.db import Database
    from hub.registry.schema import adapter_base_fits, adapters, base_models

    _, first = check_json("--base", "llama")
    # mark one stored verdict: a plain batch must hand it back untouched, --refresh must replace it
    db = Database(os.environ.get("HUB_DATABASE_URL") or f"sqlite:///{hub_home / 'registry.db'}")
    with db.write() as conn:
        base_id = conn.execute(base_models.select().where(base_models.c.name == "llama")).first().id
        plain_id = conn.execute(adapters.select().where(adapters.c.name == "plain")).first().id
        conn.execute(update(adapter_base_fits).where(
            (adapter_base_fits.c.base_id == base_id) & (adapter_base_fits.c.adapter_id == plain_id))
            .values(findings_json=json.dumps([{"code": "TARGETS_UNKNOWN", "severity": "info", "module": None,
                                                "message": "marker"}])))
    db.dispose()
    _, stored = check_json("--base", "llama")
    plain = next(a for a in stored["adapters"] if a["adapter"] == "plain")
    assert plain["findings"][0]["message"] == "marker"
    _, refreshed = check_json("--base", "llama", "--refresh")
    assert refreshed == first
    assert run_cli("check", "plain", "--base", "llama", "--refresh").exit_code == 2
