"""Recipes (schema, YAML/JSON, round trip), per-layer weight rules, declared parameters."""

from __future__ import annotations

import json

import pytest

from hub.combine import LayerWeightRule, Recipe, all_methods, load_recipe, parse_layer_weights
from hub.combine.layer_weights import weight_factor
from hub.combine.recipe import ParentSpec
from hub.errors import UsageError
from hub.formats.adapter_config import load_schema


def test_recipe_round_trip_through_json_and_yaml(tmp_path):
    recipe = Recipe(method="dare_ties", parents=[ParentSpec("a", 0.7, "a" * 64), ParentSpec("b", -1.0)],
                    params={"density": 0.3, "seed": 5, "rank": 8, "majority_sign_method": "total"}, name="mix",
                    layer_weights=parse_layer_weights("b@0-3=0.5,/mlp/=0"), drop_dora=True)
    doc = recipe.to_dict()
    (tmp_path / "r.json").write_text(json.dumps(doc))
    import yaml
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(doc))
    for name in ("r.json", "r.yaml"):
        again = load_recipe(tmp_path / name)
        assert again.to_dict() == doc


@pytest.mark.parametrize("doc,message", [
    ({"method": "svd"}, "'parents' is a required property"),
    ({"method": "mean", "parents": [{"name": "a", "weight": 1}]}, "method"),
    ({"method": "svd", "parents": []}, "parents"),
    ({"method": "svd", "parents": [{"name": "a", "weight": 1}], "params": {"rank": 0}}, "params.rank"),
    ({"method": "svd", "parents": [{"name": "a", "weight": 1}], "extra": 1}, "extra"),
    ({"method": "svd", "parents": [{"name": "a", "weight": 1, "sha256": "xyz"}]}, "sha256"),
    ({"method": "svd", "parents": [{"name": "a", "weight": 1}], "layer_weights": [{"factor": 2}]}, "layer_weights"),
])
def test_recipe_schema_refusals(doc, message):
    with pytest.raises(UsageError, match="violates the schema") as err:
        Recipe.from_dict(doc)
    assert message in str(err.value)


def test_schema_lists_every_registered_method_and_parameter():
    schema = load_schema("recipe.schema.json")
    assert set(schema["properties"]["method"]["enum"]) == {m.name for m in all_methods()}
    declared = {p.name for m in all_methods() for p in m.params}
    assert declared == set(schema["properties"]["params"]["properties"])


def test_layer_weight_rules():
    rules = parse_layer_weights("0-15=0.5, style@3=2, /mlp\\.(up|down),?_proj/=0")
    assert rules == [LayerWeightRule(0.5, layers=(0, 15)), LayerWeightRule(2.0, "style", layers=(3, 3)),
                     LayerWeightRule(0.0, match="mlp\\.(up|down),?_proj")]
    q3, q20 = "model.layers.3.self_attn.q_proj", "model.layers.20.self_attn.q_proj"
    assert weight_factor(rules, "style", q3) == 2.0      # last matching rule wins
    assert weight_factor(rules, "domain", q3) == 0.5
    assert weight_factor(rules, "domain", q20) == 1.0
    assert weight_factor(rules, "style", "model.layers.3.mlp.down_proj") == 0.0
    assert weight_factor(rules, "x", "model.embed_tokens") == 1.0  # no layer index: layer rules skip it
    for bad in ("3", "a@b=1", "5-2=1", "/(/=1", "1=x"):
        with pytest.raises(UsageError):
            parse_layer_weights(bad)
