"""cat / linear on real PEFT adapters: the result is the exact weighted sum of the
parents' deltas (PEFT's own get_delta_weight as the oracle), PEFT loads it, and
its logits equal PEFT running the parents at those weights."""

from __future__ import annotations

import json

import pytest
import torch

from hub.combine import Parent, combine, load_factors, parse_layer_weights
from hub.errors import AlreadyExists, Incompatible, Unsupported
from hub.inspect import inspect_adapter
from test_combine_oracle import (
    input_ids, logits_dense, logits_of, logits_parents_active, peft_deltas, rel_err, weighted_sum,
)


def parents_of(*pairs):
    return [Parent(load_factors(folder, name=f"p{i}"), w) for i, (folder, w) in enumerate(pairs)]


def assert_deltas_equal(got: dict, want: dict, tol: float = 1e-5):
    assert sorted(got) == sorted(want)
    for path in want:
        assert rel_err(got[path], want[path]) < tol, path


@pytest.fixture(scope="module")
def mixed(artifacts):
    """Three llama adapters: plain r8 (q,v), rsLoRA r8 (q,k,v), rank/alpha patterns (q,v,down),
    and a rank-4 one on (q,o): mixed ranks, rsLoRA, patterns, different target sets."""
    base, plain = artifacts["plain"]
    _, rslora = artifacts["rslora"]
    _, patterns = artifacts["patterns"]
    rank4 = artifacts.adapter("llama", "rank4-qo", seed=21, r=4, lora_alpha=4, target_modules=["q_proj", "o_proj"])
    return base, [plain, rslora, patterns, rank4]


@pytest.mark.parametrize("method", ["cat", "linear"])
def test_cat_is_the_exact_weighted_sum(mixed, tmp_path, method):
    base, folders = mixed
    weights = [0.7, -1.3, 0.4, 2.0]
    result = combine(parents_of(*zip(folders, weights)), method)
    out = result.write(tmp_path / "out")

    want = weighted_sum([(w, peft_deltas(base, f)) for f, w in zip(folders, weights)])
    assert_deltas_equal(peft_deltas(base, out), want)
    # union of targets; rank per module = sum of the parents' ranks there
    q0 = "model.layers.0.self_attn.q_proj"
    assert {m.path: m.rank for m in result.modules}[q0] == 8 + 8 + 8 + 4
    assert {m.path: m.rank for m in result.modules}["model.layers.1.self_attn.q_proj"] == 8 + 8 + 2 + 4
    assert all(m.energy == 1.0 and m.rel_error == 0.0 for m in result.modules)

    ids = input_ids()
    got = logits_of(base, out, ids)
    assert torch.allclose(got, logits_parents_active(base, list(zip(folders, weights)), ids), rtol=1e-5, atol=1e-5)
    assert torch.allclose(got, logits_dense(base, want, ids), rtol=1e-5, atol=1e-5)


def test_result_is_a_clean_peft_adapter(mixed, tmp_path):
    base, folders = mixed
    out = combine(parents_of((folders[0], 1.0), (folders[3], 0.5)), "cat").write(tmp_path / "out")
    info = inspect_adapter(out)
    assert not [f for f in info.findings if f.severity != "info"]
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["use_rslora"] is False and cfg["use_dora"] is False
    # scaling 1 everywhere: alpha equals rank for every module
    assert all(m.scaling == 1.0 for m in info.modules.values())
    assert sorted(cfg["target_modules"]) == sorted(info.modules)


def test_single_adapter_at_weight_one_round_trips(artifacts, tmp_path):
    base, folder = artifacts["patterns"]
    out = combine(parents_of((folder, 1.0)), "cat").write(tmp_path / "out")
    assert_deltas_equal(peft_deltas(base, out), peft_deltas(base, folder), tol=1e-6)
    ids = input_ids(1)
    assert torch.allclose(logits_of(base, out, ids), logits_of(base, folder, ids), rtol=1e-6, atol=1e-6)


def test_negative_weight_cancels(artifacts):
    _, folder = artifacts["plain"]
    parent = load_factors(folder)
    result = combine(parents_of((folder, 1.0), (folder, -1.0)), "cat")
    for m in result.modules:
        key_a = f"base_model.model.{m.path}.lora_A.weight"
        key_b = f"base_model.model.{m.path}.lora_B.weight"
        got = result.tensors[key_b].double() @ result.tensors[key_a].double()
        assert float(got.norm()) < 1e-6 * float(parent.modules[m.path].delta().norm())


def test_embedding_lora_and_its_saved_layer(artifacts, tmp_path):
    base, emb = artifacts["embedding"]
    _, plain = artifacts["plain"]
    result = combine(parents_of((emb, 0.6), (plain, -0.9)), "cat")
    out = result.write(tmp_path / "out")
    assert "base_model.model.model.embed_tokens.lora_embedding_A" in result.tensors
    assert "base_model.model.model.embed_tokens.base_layer.weight" in result.tensors
    want = weighted_sum([(0.6, peft_deltas(base, emb)), (-0.9, peft_deltas(base, plain))])
    assert_deltas_equal(peft_deltas(base, out), want)
    ids = input_ids(2)
    assert torch.allclose(logits_of(base, out, ids), logits_dense(base, want, ids), rtol=1e-5, atol=1e-5)


def test_conv1d_fan_in_fan_out(artifacts, tmp_path):
    base, a = artifacts["gpt2"]
    b = artifacts.adapter("gpt2", "gpt2-b", seed=31, r=2, lora_alpha=8, use_rslora=True,
                          target_modules=["c_attn"], fan_in_fan_out=True)
    out = combine(parents_of((a, 1.5), (b, -0.5)), "linear").write(tmp_path / "out")
    assert json.loads((out / "adapter_config.json").read_text())["fan_in_fan_out"] is True
    want = weighted_sum([(1.5, peft_deltas(base, a)), (-0.5, peft_deltas(base, b))])
    assert_deltas_equal(peft_deltas(base, out), want)
    ids = input_ids(3)
    assert torch.allclose(logits_of(base, out, ids), logits_parents_active(base, [(a, 1.5), (b, -0.5)], ids),
                          rtol=1e-5, atol=1e-5)


def test_lora_bias_is_summed(artifacts, tmp_path):
    base = artifacts.base("llama")
    a = artifacts.adapter("llama", "bias-a", seed=41, r=4, lora_alpha=8, lora_bias=True, target_modules=["q_proj"])
    b = artifacts.adapter("llama", "bias-b", seed=42, r=4, lora_alpha=4, lora_bias=True,
                          target_modules=["q_proj", "v_proj"])
    with torch.no_grad():  # PEFT initialises lora_B.bias to zero; check it travels
        from safetensors.torch import load_file
        assert any(v.abs().sum() > 0 for k, v in load_file(a / "adapter_model.safetensors").items() if "bias" in k)
    out = combine(parents_of((a, 0.5), (b, 2.0)), "cat").write(tmp_path / "out")
    ids = input_ids(4)
    assert torch.allclose(logits_of(base, out, ids), logits_parents_active(base, [(a, 0.5), (b, 2.0)], ids),
                          rtol=1e-5, atol=1e-5)


def test_layer_weights_scale_parents_per_layer(mixed, tmp_path):
    base, folders = mixed
    plain, rslora = folders[0], folders[1]
    rules = parse_layer_weights("p0@1=0.25,/v_proj/=-1,p1@/layers\\.0\\./=0")
    result = combine(parents_of((plain, 1.0), (rslora, 0.5)), "cat", layer_weights=rules)
    out = result.write(tmp_path / "out")

    def factor(i, path):
        f = 1.0
        if i == 0 and ".1." in path:
            f = 0.25
        if "v_proj" in path:
            f = -1.0
        if i == 1 and "layers.0." in path:
            f = 0.0
        return f

    want = weighted_sum([(1.0, peft_deltas(base, plain)), (0.5, peft_deltas(base, rslora))], factor)
    want = {p: d for p, d in want.items() if d.abs().max() > 0}
    assert_deltas_equal(peft_deltas(base, out), want)
    ids = input_ids(5)
    assert torch.allclose(logits_of(base, out, ids),
                          logits_parents_active(base, [(plain, 1.0), (rslora, 0.5)], ids, factor),
                          rtol=1e-5, atol=1e-5)
    # a zero factor removes the parent there: layer 0's k_proj is rslora-only, so it is left out
    assert "model.layers.0.self_attn.k_proj" not in {m.path for m in result.modules}
    assert any("left out" in n for n in result.notes)


def test_dora_parent_is_refused_unless_dropped(artifacts, tmp_path):
    base, dora = artifacts["dora"]
    _, plain = artifacts["plain"]
    with pytest.raises(Unsupported, match="DoRA.*--drop-dora"):
        combine(parents_of((dora, 1.0), (plain, 1.0)), "cat")
    result = combine(parents_of((dora, 1.0), (plain, 1.0)), "cat", drop_dora=True)
    assert any("DoRA" in n for n in result.notes)
    out = result.write(tmp_path / "out")
    assert json.loads((out / "adapter_config.json").read_text())["use_dora"] is False
    # only the LoRA parts: PEFT's get_delta_weight of the DoRA parent is B @ A * scaling
    want = weighted_sum([(1.0, peft_deltas(base, dora)), (1.0, peft_deltas(base, plain))])
    assert_deltas_equal(peft_deltas(base, out), want)


def test_modules_to_save_refused_unless_dropped(artifacts):
    _, mts = artifacts["modules_to_save"]
    with pytest.raises(Unsupported, match="lm_head.*--drop-modules-to-save"):
        combine(parents_of((mts, 1.0)), "cat")
    result = combine(parents_of((mts, 1.0)), "cat", drop_modules_to_save=True)
    assert not any("lm_head" in k for k in result.tensors)


def test_different_base_shapes_are_refused(artifacts):
    _, plain = artifacts["plain"]
    wide = artifacts.adapter("llama", "wide", seed=51, base_overrides={"hidden_size": 96},
                             r=4, lora_alpha=8, target_modules=["q_proj"])
    with pytest.raises(Incompatible, match="different base models"):
        combine(parents_of((plain, 1.0), (wide, 1.0)), "cat")


def test_writer_refuses_non_empty_folder_and_leaves_it(artifacts, tmp_path):
    _, plain = artifacts["plain"]
    result = combine(parents_of((plain, 1.0)), "cat")
    target = tmp_path / "taken"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(AlreadyExists):
        result.write(target)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".incomplete")]


def test_output_dtype(artifacts, tmp_path):
    base, plain = artifacts["plain"]
    result = combine(parents_of((plain, 1.0)), "cat", dtype="bfloat16")
    assert {t.dtype for t in result.tensors.values()} == {torch.bfloat16}
    out = result.write(tmp_path / "out")
    assert_deltas_equal(peft_deltas(base, out), peft_deltas(base, plain), tol=2e-2)
