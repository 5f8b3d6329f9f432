"""Quantized merges against the real libraries on CPU (bitsandbytes 0.50.2, transformers, PEFT).

transformers loads a tiny Llama in 4-bit (NF4, FP4, with and without double quantization)
and 8-bit and saves the bitsandbytes checkpoint; then:

- hub's merge into that checkpoint equals PEFT's own dequantization of each packed weight
  plus PEFT's delta, bit for bit in fp32;
- ``--requantize`` equals the checkpoint PEFT writes after ``merge_and_unload()`` on the
  quantized model (packed bytes, absmax, nested statistics, quant_state), and the merged
  logits equal PEFT's merged model's;
- ``--as-quantized`` equals bitsandbytes' dequantize(quantize(W)) + delta.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from hub.formats import bnb as bnb_format
from hub.merge import QuantOptions, merge
from hub.quant.scheme import QuantScheme

pytest.importorskip("bitsandbytes")
pytestmark = pytest.mark.usefixtures("bnb_reference")

SCHEMES = {   # name -> (method, double quantization)
    "nf4": ("nf4", False), "nf4-dq": ("nf4", True), "fp4-dq": ("fp4", True), "fp4": ("fp4", False),
    "int8": ("int8", False),
}
TARGETS = ["q_proj", "v_proj", "down_proj"]


@pytest.fixture(scope="module")
def tiny(artifacts):
    base = artifacts.base("llama")
    adapter = artifacts.adapter("llama", "quant-oracle", seed=5, r=8, lora_alpha=16, target_modules=TARGETS)
    return base, adapter


@pytest.fixture(scope="module")
def quantized(tiny, tmp_path_factory):
    from hub.demo.factory import make_bnb_base

    root = tmp_path_factory.mktemp("bnb")
    return {name: make_bnb_base(tiny[0], root / name, method, dq) for name, (method, dq) in SCHEMES.items()}


def peft_on(folder, adapter):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, device_map="cpu", dtype=torch.float32)
    return PeftModel.from_pretrained(model, adapter).eval()


def peft_on_quantized_load(base, scheme, adapter):
    """PEFT on the full-precision base loaded with BitsAndBytesConfig (the same packed bytes as the
    saved checkpoint): transformers cannot save a model loaded from a pre-quantized checkpoint again."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    method, dq = SCHEMES[scheme]
    config = BitsAndBytesConfig(load_in_8bit=True) if method == "int8" else BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type=method, bnb_4bit_use_double_quant=dq,
        bnb_4bit_compute_dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(base, quantization_config=config, dtype=torch.float32,
                                                 device_map="cpu")
    return PeftModel.from_pretrained(model, adapter).eval()


def lora_layers(model):
    from peft.tuners.lora import LoraLayer

    return {name.removeprefix("base_model.model."): m for name, m in model.named_modules() if isinstance(m, LoraLayer)}


def batch(vocab=128):
    return torch.randint(0, vocab, (2, 12), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_merge_into_bnb_checkpoint_equals_peft_dequant_plus_delta(tiny, quantized, scheme, tmp_path):
    from peft.utils.integrations import dequantize_bnb_weight

    base, adapter = tiny
    out = tmp_path / "merged"
    result = merge(quantized[scheme], [(adapter, 1.0)], out, dtype="fp32")
    ours = load_file(out / "model.safetensors")
    model = peft_on(quantized[scheme], adapter)
    layers = lora_layers(model)
    assert len(layers) == 2 * len(TARGETS)
    for path, layer in layers.items():
        weight = layer.get_base_layer().weight
        state = getattr(layer.get_base_layer(), "state", None)
        expected = dequantize_bnb_weight(weight, state=state).float() + layer.get_delta_weight("default")
        assert torch.equal(ours[f"{path}.weight"], expected), path
    # unadapted packed weights are dequantized, norms and embeddings pass through
    reference = {k: v for k, v in load_file(quantized[scheme] / "model.safetensors").items()}
    assert torch.equal(ours["model.norm.weight"], reference["model.norm.weight"])
    assert torch.equal(ours["model.embed_tokens.weight"], reference["model.embed_tokens.weight"])
    assert all(t.dtype == torch.float32 for t in ours.values())
    assert not any(".absmax" in k or ".SCB" in k or "quant_state" in k for k in ours)
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config
    # the full-precision merge computes what PEFT's unmerged model on the quantized base computes
    # (LLM.int8's matmul rounds activations to fp16, hence the looser bound there)
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    tol = 1e-2 if scheme == "int8" else 1e-4
    with torch.no_grad():
        torch.testing.assert_close(merged(batch()).logits, model(batch()).logits, rtol=tol, atol=tol)
    assert result.drift["summary"]["modules"] == 2 * len(TARGETS)


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_requantize_equals_peft_merge_and_unload_checkpoint(tiny, quantized, scheme, tmp_path):
    from transformers import AutoModelForCausalLM

    base, adapter = tiny
    out = tmp_path / "requantized"
    result = merge(quantized[scheme], [(adapter, 1.0)], out, quant=QuantOptions(requantize=True))
    model = peft_on_quantized_load(base, scheme, adapter)
    merged = model.merge_and_unload()
    merged.save_pretrained(tmp_path / "peft")
    theirs = load_file(tmp_path / "peft" / "model.safetensors")
    ours = load_file(out / "model.safetensors")
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        if bnb_format.STATE_PREFIX in key:   # JSON: parsed equal (hub pads it to a fixed length)
            assert bnb_format.parse_state(bytes(ours[key].numpy())) == bnb_format.parse_state(bytes(value.numpy()))
        else:
            assert ours[key].dtype == value.dtype and torch.equal(ours[key], value), key
    config = json.loads((out / "config.json").read_text())
    assert config["quantization_config"]["quant_method"] == "bitsandbytes"
    loaded = AutoModelForCausalLM.from_pretrained(out, device_map="cpu", dtype=torch.float32).eval()
    with torch.no_grad():
        assert torch.equal(loaded(batch()).logits, merged(batch()).logits)
    summary = result.drift["summary"]
    assert summary["requant_error"]["max"] > 0 and 0.9 < summary["delta_kept"]["mean"] < 1.1


@pytest.mark.parametrize("method,double_quant", [("nf4", False), ("nf4", True), ("fp4", True), ("int8", False)])
def test_as_quantized_equals_bnb_roundtrip_plus_delta(tiny, method, double_quant, tmp_path):
    import bitsandbytes.functional as F
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base, adapter = tiny
    out = tmp_path / "qlora"
    scheme = QuantScheme(method, 64, double_quant, "float32")
    result = merge(base, [(adapter, 1.0)], out, quant=QuantOptions(as_quantized=scheme))
    ours = load_file(out / "model.safetensors")
    original = load_file(base / "model.safetensors")
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), adapter)
    layers = lora_layers(model)

    def bnb_roundtrip(w):
        if method == "int8":
            cb, scb, _ = F.int8_vectorwise_quant(w.to(torch.float16))
            return F.int8_vectorwise_dequant(cb, scb).to(w.dtype)
        packed, state = F.quantize_4bit(w, blocksize=64, quant_type=method, compress_statistics=double_quant)
        return F.dequantize_4bit(packed, state)

    for key, w in original.items():
        module = key.removesuffix(".weight")
        if module in layers:
            expected = bnb_roundtrip(w) + layers[module].get_delta_weight("default")
        elif key.endswith("proj.weight"):
            expected = bnb_roundtrip(w)
        else:     # embeddings, norms, lm_head: not quantized by BitsAndBytesConfig
            expected = w
        assert torch.equal(ours[key], expected), key
    assert result.drift["summary"]["base_quant_error"]["min"] > 0


def test_as_quantized_keep_unadapted_and_requantize_loads(tiny, tmp_path):
    """--keep-unadapted copies unadapted weights; --as-quantized --requantize writes a checkpoint that
    transformers loads in 4-bit, whose unadapted weights equal transformers' own quantization."""
    from transformers import AutoModelForCausalLM

    base, adapter = tiny
    original = load_file(base / "model.safetensors")
    scheme = QuantScheme("nf4", 64, True, "float32")
    kept = tmp_path / "kept"
    merge(base, [(adapter, 1.0)], kept, quant=QuantOptions(as_quantized=scheme, keep_unadapted=True))
    ours = load_file(kept / "model.safetensors")
    assert torch.equal(ours["model.layers.0.self_attn.k_proj.weight"], original["model.layers.0.self_attn.k_proj.weight"])
    assert not torch.equal(ours["model.layers.0.self_attn.q_proj.weight"], original["model.layers.0.self_attn.q_proj.weight"])

    from hub.demo.factory import make_bnb_base

    reference = load_file(make_bnb_base(base, tmp_path / "bnb", "nf4", True) / "model.safetensors")
    out = tmp_path / "requantized"
    merge(base, [(adapter, 1.0)], out, quant=QuantOptions(as_quantized=scheme, requantize=True))
    packed = load_file(out / "model.safetensors")
    assert set(packed) == set(reference)
    for key in ("model.layers.1.self_attn.k_proj.weight", "model.layers.1.self_attn.k_proj.weight.absmax",
                "model.layers.1.self_attn.k_proj.weight.nested_absmax", "model.layers.1.mlp.up_proj.weight"):
        assert torch.equal(packed[key], reference[key]), key
    model = AutoModelForCausalLM.from_pretrained(out, device_map="cpu", dtype=torch.float32)
    assert type(model.model.layers[0].self_attn.q_proj).__name__ == "Linear4bit"
