"""Merge maths as pure torch functions, written to match peft/tuners/lora exactly.

Conventions: every function takes and returns tensors on the caller's device and
dtype (the executor passes fp32); ``delta`` always comes back in the *base
tensor's* layout, so it can be added to the stored weight as is.

- Linear / Conv1D (peft ``Linear.get_delta_weight``): ``transpose(B @ A, fan_in_fan_out) * scaling``.
  GPT-2's Conv1D stores its weight as (in, out), hence the transpose.
- Embedding (peft ``Embedding.get_delta_weight``): ``lora_embedding_A`` is (r, vocab) and
  ``lora_embedding_B`` is (dim, r); the base weight is (vocab, dim), so ``(B @ A).T * scaling``.
- DoRA (peft ``DoraLinearVariant.merge_unsafe`` / ``DoraLinearLayer.get_weight_norm``):
  ``norm = ||transpose(W0, fifo) + transpose(ΔW, fifo)||`` row-wise, against the *unmerged*
  base weight W0; ``W' = (m / norm) ⊙ (W + ΔW)`` with the factor broadcast along the output
  dimension. An embedding behaves as fan_in_fan_out=True (``DoraEmbeddingVariant``).
- lora_bias: ``b' = b + lora_B.bias * scaling`` (not touched by the DoRA factor).
"""

from __future__ import annotations

import torch


def transpose(weight: torch.Tensor, fan_in_fan_out: bool) -> torch.Tensor:
    return weight.T if fan_in_fan_out else weight


def lora_delta(lora_a: torch.Tensor, lora_b: torch.Tensor, scaling: float, fan_in_fan_out: bool = False) -> torch.Tensor:
    """ΔW of a Linear (or Conv1D when fan_in_fan_out) LoRA module, in the base weight's layout."""
    return transpose(lora_b @ lora_a, fan_in_fan_out) * scaling


def add_lora_delta_(weight: torch.Tensor, lora_a: torch.Tensor, lora_b: torch.Tensor, scaling: float,
                    transposed: bool) -> torch.Tensor:
    """In place: ``weight += scaling · B @ A`` (``(B @ A).T`` when ``transposed``: Conv1D and
    embeddings), as one fused GEMM with no d×d temporary. Equal to adding ``lora_delta`` /
    ``embedding_delta`` up to the rounding of one fused multiply-add."""
    if transposed:
        return weight.addmm_(lora_a.T, lora_b.T, alpha=scaling)
    return weight.addmm_(lora_b, lora_a, alpha=scaling)


def embedding_delta(lora_embedding_a: torch.Tensor, lora_embedding_b: torch.Tensor, scaling: float) -> torch.Tensor:
    """ΔW of an Embedding LoRA module: (vocab, dim) like the embedding table."""
    return transpose(lora_embedding_b @ lora_embedding_a, True) * scaling


def dora_weight_norm(base_weight: torch.Tensor, delta: torch.Tensor, fan_in_fan_out: bool) -> torch.Tensor:
    """Per-output-feature L2 norm of W0 + ΔW (peft get_weight_norm with scaling=1)."""
    weight = transpose(base_weight, fan_in_fan_out)
    weight = weight + 1 * transpose(delta, fan_in_fan_out)
    return torch.linalg.norm(weight, dim=1).to(weight.dtype)


def dora_merge(weight: torch.Tensor, base_weight: torch.Tensor, delta: torch.Tensor, magnitude: torch.Tensor,
               fan_in_fan_out: bool) -> torch.Tensor:
    """Fold one DoRA adapter into ``weight``.

    ``weight`` may already hold earlier adapters (peft merges active adapters in turn);
    the norm is still taken against ``base_weight``, the unmerged weight, as peft does.
    Embeddings pass fan_in_fan_out=True.
    """
    weight_norm = dora_weight_norm(base_weight, delta, fan_in_fan_out)
    factor = transpose((magnitude / weight_norm).view(-1, 1), fan_in_fan_out)
    return factor * (weight + delta)


def bias_delta(lora_b_bias: torch.Tensor, scaling: float) -> torch.Tensor:
    return lora_b_bias * scaling
