"""Compatibility rules on hand-built specs: no model, no adapter file, no registry."""

from __future__ import annotations

import pytest

from hub.compat.adapter_adapter import check_adapters
from hub.compat.adapter_base import check_adapter_base
from hub.compat.specs import AdapterSpec, BaseSpec, LoraModule
from hub.findings import has_errors

HIDDEN, LAYERS = 64, 2


def base(hidden: int = HIDDEN, layers: int = LAYERS) -> BaseSpec:
    shapes = {"model.embed_tokens.weight": ((128, hidden), "F32"), "lm_head.weight": ((128, hidden), "F32")}
    for i in range(layers):
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            shapes[f"model.layers.{i}.self_attn.{proj}.weight"] = ((hidden, hidden), "F32")
    return BaseSpec("tiny", shapes, {"model_type": "llama"}, "llama", "LlamaForCausalLM", "F32",
                    vocab_size=128, hidden_size=hidden, num_layers=layers)


def adapter(name: str = "a", r: int = 8, alpha: float = 16, width: int = HIDDEN, layers: int = LAYERS,
            targets=("q_proj", "v_proj"), **config) -> AdapterSpec:
    modules = {f"model.layers.{i}.self_attn.{t}": LoraModule(r, alpha, width, width, scaling=alpha / r)
               for i in range(layers) for t in targets}
    cfg = {"peft_type": "LORA", "r": r, "lora_alpha": alpha, "target_modules": list(targets), **config}
    return AdapterSpec(name, modules, {}, cfg)


def codes(findings) -> set[str]:
    return {f.code for f in findings}


def test_an_adapter_of_the_bases_shapes_fits():
    findings = check_adapter_base(adapter(), base())
    assert not has_errors(findings), findings


def test_a_different_width_is_a_shape_mismatch():
    findings = check_adapter_base(adapter(width=32), base())
    assert has_errors(findings) and "SHAPE_MISMATCH" in codes(findings)


def test_layers_beyond_the_base_are_refused():
    findings = check_adapter_base(adapter(layers=4), base(layers=2))
    assert has_errors(findings) and codes(findings) & {"LAYERS_BEYOND_BASE", "MODULE_NOT_IN_BASE"}


def test_modules_the_base_lacks_are_refused():
    findings = check_adapter_base(adapter(targets=("q_proj", "gate_proj")), base())
    assert has_errors(findings)


def test_two_adapters_of_one_base_combine_exactly_with_linear():
    findings = check_adapters([adapter("a"), adapter("b", r=4, alpha=4)], "linear")
    assert not has_errors(findings), findings


def test_adapters_of_different_widths_conflict():
    findings = check_adapters([adapter("a"), adapter("b", width=32)], "linear")
    assert "SHAPES_CONFLICT" in codes(findings) and has_errors(findings)


def test_dora_parents_are_not_combinable_exactly():
    findings = check_adapters([adapter("a", use_dora=True), adapter("b")], "linear")
    assert "DORA_NOT_COMBINABLE" in codes(findings)


def test_one_adapter_is_not_a_combination():
    with pytest.raises(ValueError, match="at least two"):
        check_adapters([adapter()], "linear")
