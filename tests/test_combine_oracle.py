"""PEFT as the oracle for combinations, plus the faults of PEFT's own
add_weighted_adapter that hub's combine beats (kept as tests so that a PEFT
release fixing them shows up here).

The helpers are imported by the other test_combine* files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

VOCAB = 128


def load_base(base: Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()


def load_peft(base: Path, adapters: list[tuple[str, Path]]):
    """One PeftModel holding every adapter (first one active)."""
    from peft import PeftModel

    (name0, folder0), rest = adapters[0], adapters[1:]
    model = PeftModel.from_pretrained(load_base(base), folder0, adapter_name=name0)
    for name, folder in rest:
        model.load_adapter(folder, adapter_name=name)
    return model.eval()


def lora_layers(peft_model):
    from peft.tuners.lora import LoraLayer

    for path, module in peft_model.base_model.model.named_modules():
        if isinstance(module, LoraLayer):
            yield path, module


def peft_deltas(base: Path, folder: Path) -> dict[str, torch.Tensor]:
    """{module path: delta in the base weight's layout} as PEFT computes it (get_delta_weight)."""
    model = load_peft(base, [("a", folder)])
    out = {}
    with torch.no_grad():
        for path, layer in lora_layers(model):
            if "a" in layer.lora_A or "a" in layer.lora_embedding_A:
                out[path] = layer.get_delta_weight("a").double()
    return out


def weighted_sum(parts: list[tuple[float, dict[str, torch.Tensor]]], factor=None) -> dict[str, torch.Tensor]:
    """Σ wᵢ·Δᵢ over the union of modules; ``factor(i, path)`` scales parent i on a module."""
    out: dict[str, torch.Tensor] = {}
    for i, (w, deltas) in enumerate(parts):
        for path, d in deltas.items():
            scale = w * (factor(i, path) if factor else 1.0)
            out[path] = out.get(path, torch.zeros_like(d)) + scale * d
    return out


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def input_ids(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, VOCAB, (2, 12), generator=g)


def logits(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits.double()


def logits_of(base: Path, folder: Path, ids: torch.Tensor) -> torch.Tensor:
    return logits(load_peft(base, [("x", folder)]), ids)


def logits_parents_active(base: Path, parents: list[tuple[Path, float]], ids: torch.Tensor,
                          factor=None) -> torch.Tensor:
    """PEFT with every parent active at once, each layer's scaling multiplied by the
    parent's weight (times ``factor(i, path)``): the model base + Σ wᵢ·Δᵢ."""
    names = [(f"p{i}", folder) for i, (folder, _) in enumerate(parents)]
    model = load_peft(base, names)
    model.base_model.set_adapter([n for n, _ in names])
    for path, layer in lora_layers(model):
        for i, (name, _) in enumerate(names):
            scale = parents[i][1] * (factor(i, path) if factor else 1.0)
            layer.set_scale(name, scale)
    return logits(model, ids)


def logits_dense(base: Path, deltas: dict[str, torch.Tensor], ids: torch.Tensor) -> torch.Tensor:
    """The base with the dense deltas added to its weights (no PEFT at all)."""
    model = load_base(base)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for path, d in deltas.items():
            params[f"{path}.weight"].add_(d.to(params[f"{path}.weight"].dtype))
    return logits(model, ids)


# --- the oracles agree with each other -------------------------------------------------------------


def test_oracles_agree_parents_active_equals_dense_sum(artifacts):
    base, plain = artifacts["plain"]
    _, rslora = artifacts["rslora"]
    parts = [(0.7, peft_deltas(base, plain)), (-1.2, peft_deltas(base, rslora))]
    ids = input_ids()
    active = logits_parents_active(base, [(plain, 0.7), (rslora, -1.2)], ids)
    dense = logits_dense(base, weighted_sum(parts), ids)
    assert torch.allclose(active, dense, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(active, logits(load_base(base), ids), atol=1e-3)  # the deltas matter


# --- PEFT's add_weighted_adapter faults, for the record ----------------------------------------------


def _peft_weighted_delta(base, folders, weights, combination_type, **kw) -> dict[str, torch.Tensor]:
    model = load_peft(base, [(f"p{i}", f) for i, f in enumerate(folders)])
    model.add_weighted_adapter([f"p{i}" for i in range(len(folders))], weights, "mix",
                               combination_type=combination_type, **kw)
    out = {}
    with torch.no_grad():
        for path, layer in lora_layers(model):
            if "mix" in layer.lora_A:
                out[path] = layer.get_delta_weight("mix").double()
    return out


def test_peft_linear_is_not_the_weighted_sum(artifacts):
    """PEFT's linear combines A's and B's separately: cross terms Bᵢ·Aⱼ appear."""
    base, a = artifacts["plain"]
    b = artifacts.adapter("llama", "plain-twin", seed=11, r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"])
    exact = weighted_sum([(0.5, peft_deltas(base, a)), (0.5, peft_deltas(base, b))])
    peft_linear = _peft_weighted_delta(base, [a, b], [0.5, 0.5], "linear")
    worst = max(rel_err(peft_linear[p], exact[p]) for p in exact)
    assert worst > 0.1


def test_peft_linear_refuses_mixed_ranks(artifacts):
    base, a = artifacts["plain"]
    b = artifacts.adapter("llama", "rank4", seed=12, r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    with pytest.raises(ValueError, match="same r"):
        _peft_weighted_delta(base, [a, b], [1.0, 1.0], "linear")


def test_peft_cat_is_exact(artifacts):
    base, a = artifacts["plain"]
    b = artifacts.adapter("llama", "rank4", seed=12, r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    exact = weighted_sum([(0.8, peft_deltas(base, a)), (-0.3, peft_deltas(base, b))])
    cat = _peft_weighted_delta(base, [a, b], [0.8, -0.3], "cat")
    assert max(rel_err(cat[p], exact[p]) for p in exact) < 1e-5
