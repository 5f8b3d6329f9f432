"""Where each PEFT LoRA module goes in a llama.cpp GGUF adapter, per base architecture.

A pure table (no gguf, torch or numpy import): the Hugging Face architecture decides the
GGUF ``general.architecture`` and whether q/k rows are permuted for rotary embeddings;
module paths map to tensor names exactly as llama.cpp's convert_hf_to_gguf.py names the
base's own weights (tests hold the table against the ``gguf`` package's TensorNameMap).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

OUTTYPES = ("f32", "f16", "bf16", "q8_0")   # tensor types the writer produces (--outtype)


@dataclass(frozen=True)
class Family:
    gguf_arch: str           # general.architecture llama.cpp compares with the model's
    permute_qk: bool         # convert_hf_to_gguf.py permutes q/k rows (LlamaModel.undo_permute)
    output: bool = True      # the graph has an output (lm_head) tensor; Gemma 1/2 always tie it


# Hugging Face `architectures[0]` -> family (llama.cpp's conversion/*.py register these names)
ARCHITECTURES: dict[str, Family] = {
    "LlamaForCausalLM": Family("llama", True),
    "MistralForCausalLM": Family("llama", True),       # HF Mistral converts as LLAMA (conversion/llama.py)
    "Qwen2ForCausalLM": Family("qwen2", False),
    "Qwen3ForCausalLM": Family("qwen3", False),
    "GemmaForCausalLM": Family("gemma", False, output=False),
    "Gemma2ForCausalLM": Family("gemma2", False, output=False),
    "Gemma3ForCausalLM": Family("gemma3", False),
    "Phi3ForCausalLM": Family("phi3", False),
}

# module path below model.layers.N -> GGUF tensor below blk.N
BLOCK_TENSORS: dict[str, str] = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "self_attn.qkv_proj": "attn_qkv",      # Phi-3's fused projection
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.gate_up_proj": "ffn_up",          # Phi-3's fused gate+up (llama.cpp splits it at run time)
    "mlp.down_proj": "ffn_down",
}
GLOBAL_TENSORS: dict[str, str] = {"model.embed_tokens": "token_embd", "lm_head": "output"}
EMBEDDING = "token_embd"
OUTPUT = "output"

_BLOCK = re.compile(r"^model\.layers\.(\d+)\.(.+)$")
_GGUF_BLOCK = re.compile(r"^blk\.(\d+)\.(.+)$")


def family_of(config: Mapping) -> tuple[str | None, Family | None]:
    """(HF architecture, family or None when llama.cpp's converter is not covered here)."""
    archs = config.get("architectures") or []
    arch = archs[0] if archs else None
    return arch, ARCHITECTURES.get(arch)


def tensor_name(module_path: str, family: Family | None = None) -> str | None:
    """GGUF weight name for a module path (``model.layers.3.self_attn.q_proj`` ->
    ``blk.3.attn_q.weight``), or None when llama.cpp's converter has no name for it."""
    if module_path == "lm_head" and family is not None and not family.output:
        return None
    if module_path in GLOBAL_TENSORS:
        return f"{GLOBAL_TENSORS[module_path]}.weight"
    m = _BLOCK.match(module_path)
    if m and m.group(2) in BLOCK_TENSORS:
        return f"blk.{m.group(1)}.{BLOCK_TENSORS[m.group(2)]}.weight"
    return None


def module_path(tensor: str, fused: bool = False) -> str | None:
    """Inverse of :func:`tensor_name` (``fused``: Phi-3, where ffn_up is gate_up_proj and
    attn_qkv is qkv_proj)."""
    stem = tensor.removesuffix(".weight")
    for path, name in GLOBAL_TENSORS.items():
        if stem == name:
            return path
    m = _GGUF_BLOCK.match(stem)
    if not m:
        return None
    wanted = {v: k for k, v in BLOCK_TENSORS.items() if k not in ("mlp.up_proj", "mlp.gate_up_proj")}
    wanted["ffn_up"] = "mlp.gate_up_proj" if fused else "mlp.up_proj"
    sub = wanted.get(m.group(2))
    return f"model.layers.{m.group(1)}.{sub}" if sub else None


def heads(config: Mapping) -> tuple[int, int]:
    """(n_head, n_head_kv) as the converter reads them."""
    n_head = int(config["num_attention_heads"])
    return n_head, int(config.get("num_key_value_heads") or n_head)


def qk_heads(module: str, config: Mapping, family: Family) -> int | None:
    """How many heads the converter's ``permute`` groups this module's rows by (None: not permuted).
    q by n_head; k by n_head_kv (LlamaModel.permute swaps in n_head_kv when they differ)."""
    if not family.permute_qk:
        return None
    n_head, n_kv = heads(config)
    if module.endswith("self_attn.q_proj"):
        return n_head
    if module.endswith("self_attn.k_proj"):
        return n_kv
    return None
