"""PEFT LoRA factors <-> llama.cpp GGUF LoRA pairs: the maths both directions share.

llama.cpp computes ``y += (alpha / r) * b @ (a @ x)`` per tensor pair with one alpha per
file (``scale = 1`` when alpha is 0) and its own row order for rotary q/k weights. PEFT
computes ``y += s * B @ (A @ x)`` with ``s = alpha/r``, ``alpha/sqrt(r)`` (rsLoRA) or a
per-module alpha. Export folds ``s / (file_alpha / r)`` into ``b`` whenever it is not 1,
so every module gets exactly PEFT's delta; rank patterns carry over untouched.
"""

from __future__ import annotations

import math

import torch


def file_alpha(lora_alpha: float) -> float:
    """The one alpha the file declares: the adapter's own (0 would mean scale 1 in llama.cpp)."""
    return float(lora_alpha) if lora_alpha and math.isfinite(lora_alpha) else 1.0


def llama_scale(alpha: float, r: int) -> float:
    """What llama.cpp multiplies a pair's product by (llama_adapter_lora_weight::get_scale)."""
    return alpha / r if alpha else 1.0


def fold_factor(scaling: float, r: int, alpha: float) -> float:
    """How much to multiply lora_b by so that llama.cpp's alpha/r equals PEFT's scaling."""
    return scaling / llama_scale(alpha, r)


def permute_rows(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """convert_hf_to_gguf.py's LlamaModel.permute on the rows of ``w`` (q/k weight or lora_b):
    within each head, HF's [first half | second half] rotary layout becomes interleaved pairs."""
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute_rows(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """Inverse of :func:`permute_rows`."""
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
