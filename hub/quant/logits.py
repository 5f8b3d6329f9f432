"""What requantizing costs the model's outputs: ``‖logits_requantized − logits_merged‖ / ‖logits_merged‖``
on a fixed batch of token ids (seeded), the full-precision merge against the requantized one.

The requantized checkpoint is dequantized with hub's own kernels (the values bitsandbytes'
4-bit matmul uses with an fp32 compute dtype), so this runs without bitsandbytes; both models
are held in memory, in fp32.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

BATCH = {"seed": 0, "batch": 2, "length": 16}


def fixed_batch(vocab_size: int, seed: int = BATCH["seed"], batch: int = BATCH["batch"],
                length: int = BATCH["length"]) -> torch.Tensor:
    return torch.randint(0, vocab_size, (batch, length), generator=torch.Generator().manual_seed(seed))


def dequantized_state(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a (possibly bitsandbytes) checkpoint folder in fp32, packed weights dequantized
    straight to fp32 as bitsandbytes' matmul does with an fp32 compute dtype."""
    from safetensors import safe_open

    from hub.formats import bnb
    from hub.quant.packing import dequantize

    files = sorted(folder.glob("*.safetensors"))
    handles = [safe_open(str(f), framework="pt") for f in files]
    where = {k: h for h in handles for k in h.keys()}
    state: dict[str, torch.Tensor] = {}
    hidden: set[str] = set()
    for key in sorted(where):
        if key in hidden:
            continue
        module = key.removesuffix(".weight")
        if key.endswith(".weight") and (f"{module}.SCB" in where or any(
                f"{key}.{bnb.STATE_PREFIX}{t}" in where for t in ("nf4", "fp4"))):
            group = bnb.group_keys(key, where)
            hidden.update(group)
            state[key] = dequantize(bnb.packed_from(key, {k: where[k].get_tensor(k) for k in group}), torch.float32)
        elif not key.endswith((".SCB", ".weight_format")):
            state[key] = where[key].get_tensor(key).float()
    return state


def logits_change(merged: str | Path, requantized: str | Path) -> dict:
    from transformers import AutoConfig, AutoModelForCausalLM

    merged, requantized = Path(merged), Path(requantized)
    config = json.loads((requantized / "config.json").read_text())
    config.pop("quantization_config", None)
    model_type = config.pop("model_type")
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **config), dtype=torch.float32)
    missing, unexpected = model.load_state_dict(dequantized_state(requantized), strict=False)
    tied = set(getattr(model, "_tied_weights_keys", None) or ())
    if unexpected or any(k not in tied and "lm_head" not in k for k in missing):
        raise ValueError(f"requantized checkpoint does not fit its config: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    reference = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
    ids = fixed_batch(model.config.vocab_size)
    with torch.no_grad():
        ours = model.eval()(ids).logits
        ref = reference.eval()(ids).logits
    change = float(torch.linalg.vector_norm(ours - ref) / torch.linalg.vector_norm(ref))
    return {"logits_relative_change": change, "batch": dict(BATCH)}
