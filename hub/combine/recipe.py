"""A recipe: everything needed to reproduce a combination, validated by
schemas/recipe.schema.json. Stored on the combined adapter (registry and the
safetensors metadata) and accepted back by ``hub combine --recipe FILE``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from hub.combine.layer_weights import LayerWeightRule
from hub.errors import UsageError
from hub.formats.adapter_config import schema_errors
from hub.names import check_weight

SCHEMA = "recipe.schema.json"
VERSION = 1


@dataclass(frozen=True)
class ParentSpec:
    name: str
    weight: float
    sha256: str | None = None


@dataclass
class Recipe:
    method: str
    parents: list[ParentSpec]
    params: dict = field(default_factory=dict)
    name: str | None = None
    layer_weights: list[LayerWeightRule] = field(default_factory=list)
    drop_dora: bool = False
    drop_modules_to_save: bool = False
    dtype: str = "float32"

    def to_dict(self) -> dict:
        doc: dict = {"recipe_version": VERSION}
        if self.name:
            doc["name"] = self.name
        doc["method"] = self.method
        doc["parents"] = [{"name": p.name, "weight": p.weight, **({"sha256": p.sha256} if p.sha256 else {})}
                          for p in self.parents]
        doc["params"] = dict(sorted(self.params.items()))
        if self.layer_weights:
            doc["layer_weights"] = [r.to_dict() for r in self.layer_weights]
        if self.drop_dora:
            doc["drop_dora"] = True
        if self.drop_modules_to_save:
            doc["drop_modules_to_save"] = True
        doc["dtype"] = self.dtype
        return doc

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, doc, where: str = "recipe") -> "Recipe":
        problems = schema_errors(doc, SCHEMA) if isinstance(doc, dict) else ["(top level): not an object"]
        if problems:
            more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
            raise UsageError(f"recipe violates the schema: {problems[0]}{more}", where,
                             "fix the recipe; see schemas/recipe.schema.json")
        return cls(
            method=doc["method"],
            parents=[ParentSpec(p["name"], check_weight(float(p["weight"]), f"{where}: {p['name']}"), p.get("sha256"))
                     for p in doc["parents"]],
            params=dict(doc.get("params") or {}),
            name=doc.get("name"),
            layer_weights=[LayerWeightRule.from_dict(r) for r in doc.get("layer_weights") or []],
            drop_dora=bool(doc.get("drop_dora", False)),
            drop_modules_to_save=bool(doc.get("drop_modules_to_save", False)),
            dtype=doc.get("dtype", "float32"),
        )


MAX_RECIPE_BYTES = 1 << 20   # a recipe is a page of text; anything larger is not one


def load_recipe(path: str | Path) -> Recipe:
    """Read a JSON or YAML recipe file (YAML is a superset of JSON, so one parser).

    Only a regular file of at most 1 MB is read (a FIFO would block, /dev/zero never
    ends), and YAML aliases may not expand it past hub.safe_yaml's bound."""
    import yaml

    from hub import safe_yaml
    from hub.checked_files import FileTooLarge, NotRegularFile, read_regular

    path = Path(path)
    try:
        text = read_regular(path, MAX_RECIPE_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise UsageError("recipe file does not exist", str(path), "check the path") from None
    except (NotRegularFile, FileTooLarge) as exc:
        raise UsageError(f"recipe is {exc.strerror}", str(path), "pass a JSON or YAML recipe file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read recipe: {exc}", str(path), "pass a UTF-8 JSON or YAML file") from None
    try:
        doc = safe_yaml.load(text)
    except safe_yaml.YAMLTooLarge as exc:
        raise UsageError(f"recipe refused: {exc}", str(path), "write the recipe out without YAML aliases") from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "syntax error"
        raise UsageError(f"recipe is not valid JSON or YAML: {first}", str(path), "fix the syntax") from None
    return Recipe.from_dict(doc, str(path))
