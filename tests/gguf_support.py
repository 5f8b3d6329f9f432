"""Shared pieces of the GGUF tests: tiny bases of every covered architecture, llama.cpp's
own converter (convert_lora_to_gguf.py from the llama-cpp-python sdist, extracted by
.ci/setup into .gl/llama.cpp), llama.cpp itself (llama-cpp-python), and the delta oracle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
CONVERTER = Path(os.environ.get("HUB_LLAMA_CPP_SRC", REPO / ".gl" / "llama.cpp")) / "convert_lora_to_gguf.py"

# tiny models of each covered family, from transformers' own configs (GQA: 4 heads, 2 kv heads)
COMMON = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, vocab_size=128, max_position_embeddings=128, head_dim=16)
ARCHES = {   # name -> (model_type, extra config, LoRA targets)
    "llama": ("llama", {}, None),
    "mistral": ("mistral", {}, None),
    "qwen2": ("qwen2", {}, None),
    "qwen3": ("qwen3", {}, None),
    "gemma": ("gemma", {}, None),
    "gemma2": ("gemma2", {}, None),
    "gemma3": ("gemma3_text", {}, None),
    "phi3": ("phi3", {"pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 1},
             ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]),
}
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def tiny_base(name: str, out: Path) -> Path:
    from transformers import AutoConfig, AutoModelForCausalLM

    if (out / "config.json").is_file():
        return out
    model_type, extra, _ = ARCHES[name]
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **COMMON, **extra))
    model.save_pretrained(out)
    return out


def targets(name: str) -> list[str]:
    return ARCHES[name][2] or ALL_LINEAR


def run_converter(adapter: Path, base: Path, out: Path, outtype: str = "f32") -> Path:
    assert CONVERTER.is_file(), f"{CONVERTER} is missing: run `bash .ci/setup` (it extracts llama.cpp's converter)"
    proc = subprocess.run([sys.executable, str(CONVERTER), "--base", str(base), "--outfile", str(out),
                           "--outtype", outtype, str(adapter)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def gguf_tensors(path: Path) -> dict[str, tuple[str, np.ndarray]]:
    from gguf import GGUFReader

    return {t.name: (t.tensor_type.name, np.array(t.data)) for t in GGUFReader(path).tensors}


def gguf_fields(path: Path) -> dict:
    from gguf import GGUFReader

    return {k: f.contents() for k, f in GGUFReader(path).fields.items() if not k.startswith("GGUF.")}


def peft_deltas(folder: Path) -> dict[str, torch.Tensor]:
    """Every module's delta as PEFT defines it (scaling from the config, rank/alpha patterns,
    rsLoRA), in float64, keyed by module path; embedding deltas as (vocab, hidden)."""
    import re

    from safetensors.torch import load_file

    cfg = json.loads((folder / "adapter_config.json").read_text())
    w = {k: v.double() for k, v in load_file(str(folder / "adapter_model.safetensors")).items()}
    out = {}
    for key in w:
        m = re.match(r"base_model\.model\.(.+)\.(lora_A\.weight|lora_embedding_A)$", key)
        if not m:
            continue
        module = m.group(1)
        embedding = m.group(2) == "lora_embedding_A"
        a = w[key]
        b = w[key.replace("lora_A", "lora_B").replace("lora_embedding_A", "lora_embedding_B")]
        r = _pattern(cfg.get("rank_pattern") or {}, module, cfg["r"])
        alpha = _pattern(cfg.get("alpha_pattern") or {}, module, cfg["lora_alpha"])
        scaling = alpha / (r ** 0.5 if cfg.get("use_rslora") else r)
        delta = (b @ a) * scaling
        out[module] = delta.T if embedding else delta
    return out


def _pattern(pattern: dict, module: str, default):
    import re

    for key, value in pattern.items():
        if re.match(rf"(.*\.)?{key}$", module):
            return value
    return default


def relative(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))
