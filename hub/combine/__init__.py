"""Weighted combination of LoRA adapters into a new LoRA adapter.

Methods are declared (``declare``, built-ins in ``methods``) apart from their maths
(one module per method over ``maths``/``lowrank``) and looked up by name
(``registry``); ``engine.combine`` runs one over the union of the parents' modules;
``writer`` writes the PEFT folder; ``similarity`` compares deltas from the factors.

The names below load on first use, so importing a declaration (hub.combine.methods)
does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Combination": "engine", "ModuleReport": "engine", "Parent": "engine", "combine": "engine",
    "AdapterFactors": "factors", "ModuleFactors": "factors", "load_factors": "factors",
    "LayerWeightRule": "layer_weights", "parse_layer_weights": "layer_weights",
    "ParentSpec": "recipe", "Recipe": "recipe", "load_recipe": "recipe",
    "Method": "declare", "Param": "declare",
    "all_methods": "registry", "get_method": "registry", "method_names": "registry",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hub.combine' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"hub.combine.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
