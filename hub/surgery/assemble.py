"""Turn per-module results into a PEFT adapter (config + tensors)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hub.combine.writer import bias_key, lora_keys, plain_lora_config
from hub.formats.adapter_weights import PREFIX


@dataclass
class NewModule:
    path: str
    kind: str                          # linear | embedding
    A: torch.Tensor                    # (k, in)
    B: torch.Tensor                    # (out, k); B @ A is the module's new delta in LoRA layout
    bias: torch.Tensor | None = None   # the new lora bias delta (already scaled)

    @property
    def rank(self) -> int:
        return self.A.shape[0]


def assemble(source_config: dict, modules: list[NewModule], full_tensors: dict[str, torch.Tensor] | None = None,
             modules_to_save: list[str] | None = None, one_alpha: bool = False,
             dtype: torch.dtype = torch.float32) -> tuple[dict, dict[str, torch.Tensor]]:
    """(adapter_config, tensors) of a plain LoRA applying exactly each module's B @ A.

    ``full_tensors``: {parameter name: tensor} saved whole (modules_to_save, saved embedding
    layers); ``one_alpha``: a single lora_alpha, each module's alpha/r folded into its A
    (llama.cpp); otherwise scaling 1 everywhere (PEFT, vLLM)."""
    ranks = {m.path: m.rank for m in modules}
    has_bias = any(m.bias is not None for m in modules)
    config = plain_lora_config([source_config], ranks, has_bias, one_alpha=one_alpha) if ranks else {}
    config["modules_to_save"] = sorted(modules_to_save) if modules_to_save else None
    tensors: dict[str, torch.Tensor] = {}
    r0 = config.get("r", 1)
    for m in modules:
        scaling = r0 / m.rank if one_alpha else 1.0      # what PEFT / llama.cpp will multiply by
        key_a, key_b = lora_keys(m.path, m.kind)
        tensors[key_a] = (m.A / scaling).to(dtype).contiguous()
        tensors[key_b] = m.B.to(dtype).contiguous()
        if has_bias and m.kind == "linear":   # lora_bias gives every Linear a bias: zeros where none
            bias = m.bias if m.bias is not None else torch.zeros(m.B.shape[0])
            tensors[bias_key(m.path)] = (bias / scaling).to(dtype).contiguous()
    for name, tensor in (full_tensors or {}).items():
        tensors[f"{PREFIX}{name}"] = tensor.contiguous()
    return config, tensors
