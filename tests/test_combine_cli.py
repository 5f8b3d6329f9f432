"""`hub combine` through the real CLI and registry: lineage and recipe recorded,
the exported result loads in PEFT with the oracle's logits, recipes replay,
failures leave the registry as it was."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from safetensors.torch import load_file

from tests.helpers import cli_json, registry_snapshot, run_cli
from test_combine_oracle import input_ids, logits_of, logits_parents_active, peft_deltas, rel_err, weighted_sum


def durable(snapshot: dict) -> dict:
    """The registry and store without views/ (hard-link read caches that any read may build)."""
    return {**snapshot, "files": {k: v for k, v in snapshot["files"].items() if not k.startswith("views/")}}


@pytest.fixture()
def registered(artifacts):
    base, plain = artifacts["plain"]
    _, rslora = artifacts["rslora"]
    _, dora = artifacts["dora"]
    rank4 = artifacts.adapter("llama", "rank4-qo", seed=21, r=4, lora_alpha=4, target_modules=["q_proj", "o_proj"])
    folders = {"plain": plain, "rslora": rslora, "dora": dora, "rank4": rank4}
    for name, folder in folders.items():
        assert run_cli("add", folder, "--name", name).exit_code == 0
    return base, folders


def test_combine_cat_registers_lineage_and_recipe(registered, tmp_path):
    base, folders = registered
    out = cli_json("combine", "plain:0.7", "rslora:-1.3", "rank4:2", "--method", "cat", "--name", "mix",
                   "--tag", "combined")
    assert out["exact"] is True and out["name"] == "mix" and out["modules"] == len(out["module_reports"])

    rec = cli_json("show", "mix")
    assert rec["source"]["kind"] == "combine" and rec["tags"] == ["combined"]
    shas = {p["name"]: p["sha256"] for p in cli_json("list") for p in [p]}
    assert [(p["name"], p["weight"], p["sha256"]) for p in rec["lineage"]] == [
        ("plain", 0.7, shas["plain"]), ("rslora", -1.3, shas["rslora"]), ("rank4", 2.0, shas["rank4"])]
    assert rec["recipe"]["method"] == "cat" and rec["recipe"]["parents"][1] == {
        "name": "rslora", "weight": -1.3, "sha256": shas["rslora"]}

    text = run_cli("show", "mix")
    assert "recipe" in text.stdout and '"method": "cat"' in text.stdout and "weight -1.3" in text.stdout

    exported = tmp_path / "mix"
    assert run_cli("export", "mix", exported).exit_code == 0
    parents = [(folders["plain"], 0.7), (folders["rslora"], -1.3), (folders["rank4"], 2.0)]
    want = weighted_sum([(w, peft_deltas(base, f)) for f, w in parents])
    got = peft_deltas(base, exported)
    assert max(rel_err(got[p], want[p]) for p in want) < 1e-5
    ids = input_ids()
    assert torch.allclose(logits_of(base, exported, ids), logits_parents_active(base, parents, ids),
                          rtol=1e-5, atol=1e-5)
    # the recipe travels inside the exported file too
    from hub.services.combining import folder_recipe
    assert folder_recipe(exported)["parents"][0]["name"] == "plain"


def test_recipe_replays_the_combination(registered, tmp_path):
    cli_json("combine", "plain:1", "rslora:0.5", "--method", "dare_ties", "--density", "0.5", "--seed", "9",
             "--rank", "4", "--layer-weights", "rslora@1=0.5", "--name", "dt")
    recipe = cli_json("show", "dt")["recipe"]
    assert recipe["params"] == {"density": 0.5, "majority_sign_method": "total", "rank": 4, "seed": 9}
    assert recipe["layer_weights"] == [{"factor": 0.5, "parent": "rslora", "layers": [1, 1]}]
    path = tmp_path / "dt.yaml"
    path.write_text(yaml.safe_dump(recipe))
    again = cli_json("combine", "--recipe", path, "--name", "dt-again")
    assert again["recipe"]["parents"] == recipe["parents"]
    run_cli("export", "dt", tmp_path / "a")
    run_cli("export", "dt-again", tmp_path / "b")
    ta = load_file(tmp_path / "a" / "adapter_model.safetensors")
    tb = load_file(tmp_path / "b" / "adapter_model.safetensors")
    assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)
    # the recipe's own name is used when --name is absent; it is taken, so that fails cleanly
    taken = run_cli("combine", "--recipe", path)
    assert taken.exit_code != 0 and "already taken" in taken.stderr


def test_recipe_refuses_changed_parent(registered, tmp_path, hub_home):
    _, folders = registered
    doc = {"method": "cat", "name": "pinned",
           "parents": [{"name": "plain", "weight": 1.0, "sha256": "0" * 64}, {"name": "rank4", "weight": 1.0}]}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    before = registry_snapshot(hub_home)
    result = run_cli("combine", "--recipe", path)
    assert result.exit_code != 0 and "changed since the recipe was written" in result.stderr
    assert durable(registry_snapshot(hub_home)) == durable(before)


def test_recipe_schema_errors_are_one_line(registered, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("method: svd\nparents:\n  - {name: plain, weight: heavy}\nparams: {rank: 0}\n")
    result = run_cli("combine", "--recipe", path, "--name", "x")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "violates the schema" in result.stderr


def test_svd_energy_and_module_table(registered):
    result = run_cli("combine", "plain:1", "rslora:1", "--method", "svd", "--energy", "0.95", "--name", "s",
                     "--modules")
    assert result.exit_code == 0, result.stderr
    assert "approximate" in result.stdout and "retained energy" in result.stdout
    assert "model.layers.0.self_attn.q_proj" in result.stdout and "REL ERROR" in result.stdout
    out = cli_json("show", "s")
    assert out["recipe"]["params"] == {"energy": 0.95}


def test_failures_leave_the_registry_unchanged(registered, hub_home):
    before = registry_snapshot(hub_home)
    dora = run_cli("combine", "plain:1", "dora:1", "--method", "cat", "--name", "d")
    assert dora.exit_code == 1 and "DoRA" in dora.stderr and "--drop-dora" in dora.stderr
    assert dora.stderr.count("\n") == 1
    missing = run_cli("combine", "plain:1", "nope:1", "--method", "cat", "--name", "d")
    assert missing.exit_code == 1 and "no adapter named 'nope'" in missing.stderr
    no_density = run_cli("combine", "plain:1", "rslora:1", "--method", "ties", "--name", "d")
    assert no_density.exit_code == 2 and "--density" in no_density.stderr
    bad_param = run_cli("combine", "plain:1", "rslora:1", "--method", "cat", "--rank", "4", "--name", "d")
    assert bad_param.exit_code == 2 and "takes no parameter rank" in bad_param.stderr
    taken = run_cli("combine", "plain:1", "--method", "cat", "--name", "rslora")
    assert taken.exit_code == 1 and "already taken" in taken.stderr
    mixed = run_cli("combine", "plain:1", "--method", "cat", "--recipe", "x.json")
    assert mixed.exit_code == 2
    dry = run_cli("combine", "plain:1", "rank4:1", "--method", "svd", "--rank", "2", "--name", "d", "--dry-run")
    assert dry.exit_code == 0 and "dry run" in dry.stdout
    assert durable(registry_snapshot(hub_home)) == durable(before)


def test_drop_dora_opt_in(registered):
    out = cli_json("combine", "plain:1", "dora:0.5", "--method", "linear", "--drop-dora", "--name", "nodora")
    assert any("DoRA" in n for n in out["notes"])
    assert cli_json("show", "nodora")["use_dora"] is False


def test_similar_from_factors(registered):
    base, folders = registered
    report = cli_json("similar", "plain", "rslora", "rank4")
    assert [(p["a"], p["b"]) for p in report["pairs"]] == [("plain", "rslora"), ("plain", "rank4"),
                                                           ("rslora", "rank4")]
    deltas = {n: peft_deltas(base, folders[n]) for n in ("plain", "rslora", "rank4")}
    for pair in report["pairs"]:
        da, db = deltas[pair["a"]], deltas[pair["b"]]
        paths = sorted(set(da) | set(db))
        flat = lambda d: torch.cat([(d[p] if p in d else torch.zeros_like((da | db)[p])).flatten()  # noqa: E731
                                    for p in paths])
        want = torch.nn.functional.cosine_similarity(flat(da), flat(db), dim=0)
        # PEFT forms its deltas in float32; ours come from float64 products of the factors
        assert pair["cosine"] == pytest.approx(float(want), abs=1e-6)
        for m in pair["modules"]:
            if m["in_a"] and m["in_b"]:
                x, y = da[m["path"]], db[m["path"]]
                assert m["cosine"] == pytest.approx(float(torch.nn.functional.cosine_similarity(
                    x.flatten(), y.flatten(), dim=0)), abs=1e-6)
                assert m["sign_conflict"] == pytest.approx(float(((x * y) < 0).double().mean()), abs=1e-3)
    text = run_cli("similar", "plain", "rslora")
    assert text.exit_code == 0 and text.stdout.splitlines()[0].split()[:3] == ["A", "B", "COSINE"]
    one = cli_json("similar", "plain")
    assert {p["b"] for p in one["pairs"]} == {"rslora", "rank4", "dora"}


def test_help(registered):
    for cmd in ("combine", "similar"):
        result = run_cli(cmd, "--help")
        assert result.exit_code == 0 and "Usage" in result.stdout
