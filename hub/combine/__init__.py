"""Weighted combination of LoRA adapters into a new LoRA adapter.

Pure torch over low-rank factors: one module per method, each registered with
its declared parameters (``registry``); ``engine.combine`` runs one over the
union of the parents' modules; ``writer`` writes the PEFT folder;
``similarity`` compares deltas from the factors.
"""

from hub.combine.engine import Combination, ModuleReport, Parent, combine
from hub.combine.factors import AdapterFactors, ModuleFactors, load_factors
from hub.combine.layer_weights import LayerWeightRule, parse_layer_weights
from hub.combine.recipe import ParentSpec, Recipe, load_recipe
from hub.combine.registry import Method, Param, all_methods, get_method, method_names

__all__ = [
    "AdapterFactors", "Combination", "LayerWeightRule", "Method", "ModuleFactors", "ModuleReport", "Param",
    "Parent", "ParentSpec", "Recipe", "all_methods", "combine", "get_method", "load_factors", "load_recipe",
    "method_names", "parse_layer_weights",
]
