"""hub.merge against PEFT, the reference: for every adapter kind, the merged folder
loads with AutoModelForCausalLM and its weights and logits equal PEFT's
merge_and_unload (weighted / multi-adapter cases: add_weighted_adapter "cat", or
several active adapters with set_scale)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from hub.demo.factory import ADAPTER_KINDS
from hub.merge import build_plan, execute, merge

KINDS = [*ADAPTER_KINDS, "lora_bias"]
LORA_BIAS = dict(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj"], lora_bias=True)


def kind_folders(artifacts, kind):
    if kind == "lora_bias":  # qwen2's q/k/v projections carry biases for lora_bias to land on
        return artifacts.base("qwen2"), artifacts.adapter("qwen2", "lora_bias", seed=11, **LORA_BIAS)
    return artifacts[kind]


def inputs(vocab=128):
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, vocab, (2, 12), generator=g)


def load(folder, dtype=torch.float32):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).eval()


def peft_model(base, adapters, dtype=torch.float32):
    """PeftModel with adapters named a0, a1, ... loaded on a fresh base."""
    from peft import PeftModel

    model = PeftModel.from_pretrained(load(base, dtype), adapters[0], adapter_name="a0")
    for i, folder in enumerate(adapters[1:], start=1):
        model.load_adapter(folder, adapter_name=f"a{i}")
    return model.eval()


def set_scales(model, weights):
    from peft.tuners.lora import LoraLayer

    for module in model.modules():
        if isinstance(module, LoraLayer):
            for i, w in enumerate(weights):
                module.set_scale(f"a{i}", w)


def assert_same_model(ours, ref, x, **tol):
    ref_sd, our_sd = ref.state_dict(), ours.state_dict()
    assert set(our_sd) == set(ref_sd)
    for name, value in ref_sd.items():
        torch.testing.assert_close(our_sd[name], value, msg=lambda m, n=name: f"{n}: {m}", **tol)
    with torch.no_grad():
        torch.testing.assert_close(ours(x).logits.float(), ref(x).logits.float(), **tol)


@pytest.mark.parametrize("kind", KINDS)
def test_merge_equals_peft_merge_and_unload(artifacts, tmp_path, kind):
    base, adapter = kind_folders(artifacts, kind)
    # tiny shards, so the sharded writer and its index are exercised too
    result = merge(base, [(adapter, 1.0)], tmp_path / "merged", device="cpu", shard_size="40KB")
    assert len(result.shards) > 1 and (tmp_path / "merged" / "model.safetensors.index.json").is_file()
    assert result.tensors_touched > 0

    ref = peft_model(base, [adapter]).merge_and_unload()
    ours = load(tmp_path / "merged")
    base_model = load(base)
    assert_same_model(ours, ref, inputs())
    # and the merge did change the model (the adapter is not a no-op)
    with torch.no_grad():
        assert not torch.allclose(ours(inputs()).logits, base_model(inputs()).logits)


def test_lora_bias_lands_on_the_base_bias(artifacts, tmp_path):
    base, adapter = kind_folders(artifacts, "lora_bias")
    merge(base, [(adapter, 1.0)], tmp_path / "m", device="cpu")
    ours, base_model = load(tmp_path / "m"), load(base)
    q = "model.layers.0.self_attn.q_proj.bias"
    assert not torch.equal(ours.state_dict()[q], base_model.state_dict()[q])


@pytest.mark.parametrize("kind", ["plain", "dora", "embedding"])
def test_bf16_base_matches_peft_in_bf16(artifacts, tmp_path, kind):
    from hub.demo.factory import make_base

    base_kind, _ = ADAPTER_KINDS[kind]
    _, adapter = artifacts[kind]
    base = tmp_path / "base-bf16"
    make_base(base_kind, base, dtype=torch.bfloat16)  # same seed: the fp32 base rounded to bf16
    merge(base, [(adapter, 1.0)], tmp_path / "m", device="cpu")
    ours = load(tmp_path / "m", torch.bfloat16)
    assert ours.model.layers[0].self_attn.q_proj.weight.dtype == torch.bfloat16
    ref = peft_model(base, [adapter], torch.bfloat16).merge_and_unload()
    # hub folds in fp32 and rounds once; PEFT rounds the delta, then the sum: within bf16 tolerance
    assert_same_model(ours, ref, inputs(), rtol=1.6e-2, atol=2e-2)


def test_two_adapters_weighted_one_negative_equals_peft_cat(artifacts, tmp_path):
    base, a = artifacts["plain"]
    _, b = artifacts["patterns"]
    weights = [0.7, -0.4]
    merge(base, [(a, weights[0]), (b, weights[1])], tmp_path / "m", device="cpu")

    ref = peft_model(base, [a, b])
    ref.add_weighted_adapter(["a0", "a1"], weights, "mix", combination_type="cat")
    ref.set_adapter("mix")
    assert_same_model(load(tmp_path / "m"), ref.merge_and_unload(), inputs())


def test_two_adapters_equal_base_plus_exact_weighted_sum_of_deltas(artifacts, tmp_path):
    """Independent of PEFT: W' = W + Σ wᵢ·sᵢ·BᵢAᵢ computed here from the files."""
    from hub.inspect import inspect_adapter

    base, a = artifacts["plain"]
    _, b = artifacts["patterns"]
    weights = [0.7, -0.4]
    merge(base, [(a, weights[0]), (b, weights[1])], tmp_path / "m", device="cpu")
    name = "model.layers.1.self_attn.q_proj"   # rank_pattern gives it rank 2 in b
    with safe_open(str(base / "model.safetensors"), "pt") as f:
        expected = f.get_tensor(f"{name}.weight").double()
    for folder, w in zip((a, b), weights):
        info = inspect_adapter(folder)
        with safe_open(str(folder / "adapter_model.safetensors"), "pt") as f:
            A = f.get_tensor(f"base_model.model.{name}.lora_A.weight").double()
            B = f.get_tensor(f"base_model.model.{name}.lora_B.weight").double()
        expected += w * info.modules[name].scaling * (B @ A)
    with safe_open(str(tmp_path / "m" / "model.safetensors"), "pt") as f:
        got = f.get_tensor(f"{name}.weight").double()
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    assert info.modules[name].r == 2


def test_weighted_dora_then_plain_equals_peft_sequential_merge(artifacts, tmp_path):
    """DoRA under a weight: PEFT's set_scale(w); several adapters: PEFT merging the
    active adapters in turn, DoRA renormalised against the unmerged base rows."""
    base, dora = artifacts["dora"]
    _, plain = artifacts["plain"]
    weights = [0.8, -0.5]
    merge(base, [(dora, weights[0]), (plain, weights[1])], tmp_path / "m", device="cpu")
    ref = peft_model(base, [dora, plain])
    ref.base_model.set_adapter(["a0", "a1"])
    set_scales(ref, weights)
    assert_same_model(load(tmp_path / "m"), ref.merge_and_unload(), inputs())


def test_dora_on_conv1d_fan_in_fan_out(artifacts, tmp_path):
    base = artifacts.base("gpt2")
    adapter = artifacts.adapter("gpt2", "gpt2-dora", seed=12, r=4, lora_alpha=8, target_modules=["c_attn", "c_fc"],
                                fan_in_fan_out=True, use_dora=True)
    merge(base, [(adapter, 1.0)], tmp_path / "m", device="cpu")
    assert_same_model(load(tmp_path / "m"), peft_model(base, [adapter]).merge_and_unload(), inputs())


def test_tied_embeddings_untouched_stay_tied(artifacts, tmp_path):
    base, adapter = artifacts["qwen2"]
    merge(base, [(adapter, 1.0)], tmp_path / "m", device="cpu")
    with safe_open(str(tmp_path / "m" / "model.safetensors"), "pt") as f:
        assert "lm_head.weight" not in f.keys()
    assert json.loads((tmp_path / "m" / "config.json").read_text())["tie_word_embeddings"] is True
    ours = load(tmp_path / "m")
    assert ours.lm_head.weight.data_ptr() == ours.model.embed_tokens.weight.data_ptr()


def test_tied_embeddings_with_head_and_embedding_lora_are_untied_and_equal_peft_forward(artifacts, tmp_path):
    """PEFT's merge_and_unload adds an lm_head delta to the shared tensor (so the input
    embedding changes too); hub writes both sides and unties, which is what the PEFT
    model computes before merging."""
    base = artifacts.base("qwen2")
    adapter = artifacts.adapter("qwen2", "tied-head", seed=13, r=4, lora_alpha=8,
                                target_modules=["lm_head", "embed_tokens", "q_proj"])
    merge(base, [(adapter, 1.0)], tmp_path / "m", device="cpu")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["tie_word_embeddings"] is False
    ours = load(tmp_path / "m")
    assert ours.lm_head.weight.data_ptr() != ours.model.embed_tokens.weight.data_ptr()
    x = inputs()
    with torch.no_grad():
        torch.testing.assert_close(ours(x).logits, peft_model(base, [adapter])(x).logits)


def test_tied_embeddings_with_modules_to_save_head_equal_peft(artifacts, tmp_path):
    base = artifacts.base("qwen2")
    adapter = artifacts.adapter("qwen2", "tied-mts", seed=14, r=4, lora_alpha=8,
                                target_modules=["q_proj"], modules_to_save=["lm_head"])
    merge(base, [(adapter, 1.0)], tmp_path / "m", device="cpu")
    ours = load(tmp_path / "m")
    assert_same_model(ours, peft_model(base, [adapter]).merge_and_unload(), inputs())
    assert not torch.equal(ours.lm_head.weight, ours.model.embed_tokens.weight)


def test_dtype_cast_to_bf16(artifacts, tmp_path):
    base, adapter = artifacts["plain"]
    result = merge(base, [(adapter, 1.0)], tmp_path / "m", device="cpu", dtype="bf16")
    assert result.dtype == "BF16"
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["dtype"] == "bfloat16"
    ref = peft_model(base, [adapter]).merge_and_unload()
    ours = load(tmp_path / "m", torch.bfloat16)
    for name, value in ref.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[name], value.to(torch.bfloat16))


def test_plan_counts_match_the_written_folder(artifacts, tmp_path):
    base, adapter = artifacts["all_linear"]
    plan = build_plan(base, [(adapter, 1.0)], shard_size="30KB")
    report = plan.describe("cpu", prefetch_bytes=1 << 20)
    result = execute(plan, tmp_path / "m", device="cpu")
    on_disk = sum(len(f.get_tensor(k).reshape(-1).view(torch.uint8))
                  for shard in result.shards
                  for f in [safe_open(str(tmp_path / "m" / shard), "pt")] for k in f.keys())
    assert report["bytes_written"] == result.bytes_written == on_disk
    assert report["tensors_touched"] == result.tensors_touched == len(report["touched"])
    # all-linear on llama: 7 projections × 2 layers (lm_head is excluded by PEFT)
    assert report["tensors_touched"] == 14
    assert report["bytes_read"] >= report["bytes_written"]
    assert report["peak_memory_estimate"] > 0
    index = json.loads((tmp_path / "m" / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == set(result.shards)
    assert index["metadata"]["total_size"] == on_disk


def test_side_files_and_lineage_are_written(artifacts, tmp_path):
    base, adapter = artifacts["plain"]
    # tiny bases have no tokenizer or card; give a copy some, like a real model folder
    extra = tmp_path / "base"
    import shutil

    shutil.copytree(base, extra)
    (extra / "tokenizer.json").write_text("{}")
    (extra / "README.md").write_text("base model card")
    merge(extra, [(adapter, 0.5)], tmp_path / "m", device="cpu")
    out = tmp_path / "m"
    assert (out / "tokenizer.json").read_text() == "{}"
    assert (out / "generation_config.json").is_file()
    assert not (out / "README.md").exists()   # the base's card does not describe the merge
    lineage = json.loads((out / "hub_merge.json").read_text())
    assert lineage["adapters"][0]["weight"] == 0.5 and lineage["adapters"][0]["sha256"]
    assert lineage["base"]["path"] == str(extra)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kind", ["plain", "dora", "gpt2", "embedding"])
def test_cuda_merge_equals_peft(artifacts, tmp_path, kind):
    base, adapter = kind_folders(artifacts, kind)
    result = merge(base, [(adapter, 1.0)], tmp_path / "m", device="cuda")
    assert result.device == "cuda"
    ref = peft_model(base, [adapter]).merge_and_unload()
    # GPU matmuls (TF32 off by default for fp32 matmul in torch) round differently than CPU ones
    assert_same_model(load(tmp_path / "m"), ref, inputs(), rtol=1e-5, atol=1e-5)
