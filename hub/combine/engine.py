"""Run a combination: check the parents, combine module by module over the union
of their modules (a parent without a module contributes zero there), and build
the new adapter's config and tensors.

The result is a plain LoRA with scaling 1 everywhere (lora_alpha = r per module):
every parent's scaling, rsLoRA and rank/alpha patterns are folded into the
factors, so PEFT computes exactly B @ A for each module.
"""

from __future__ import annotations

import json
import logging
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hub.combine.arrays import NUMPY, ops
from hub.combine.core import ModuleContext, Term, map_modules
from hub.combine.factors import AdapterFactors, ModuleFactors
from hub.combine.layer_weights import LayerWeightRule, weight_factor
from hub.combine.declare import Method
from hub.combine.registry import get_method
from hub.combine.writer import bias_key, config_text, lora_keys, plain_lora_config, weights_layout, write_adapter
from hub.errors import Incompatible, Unsupported, UsageError
from hub.findings import Finding, finding
from hub.formats.safetensors_layout import Layout
from hub.progress import Progress

log = logging.getLogger(__name__)

DTYPES = ("float32", "bfloat16", "float16")   # of the written factors
SAVED_LAYER = ".base_layer."   # PEFT saves a targeted embedding's base weights under this name


@dataclass
class Parent:
    factors: AdapterFactors
    weight: float

    @property
    def name(self) -> str:
        return self.factors.name


@dataclass
class ModuleReport:
    path: str
    rank: int
    energy: float                  # retained fraction of the target's squared Frobenius norm
    rel_error: float               # ||target - result||_F / ||target||_F
    parents: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Combination:
    method: str
    params: dict
    config: dict
    tensors: dict[str, Any]        # numpy arrays or torch tensors, as the parents' factors
    modules: list[ModuleReport]
    notes: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return get_method(self.method).exact

    @property
    def min_energy(self) -> float:
        return min((m.energy for m in self.modules), default=1.0)

    @property
    def max_rel_error(self) -> float:
        return max((m.rel_error for m in self.modules), default=0.0)

    def summary(self) -> dict:
        return {
            "method": self.method, "params": self.params, "exact": self.exact, "modules": len(self.modules),
            "rank_min": min((m.rank for m in self.modules), default=0),
            "rank_max": max((m.rank for m in self.modules), default=0),
            "min_energy": self.min_energy, "max_rel_error": self.max_rel_error, "notes": self.notes,
        }

    def write(self, folder: str | Path, recipe_json: str | None = None) -> Path:
        return write_adapter(folder, self.config, self.tensors, _recipe_metadata(recipe_json))

    def files(self, recipe_json: str | None = None) -> tuple[str, Layout]:
        """What ``write`` writes, unwritten: adapter_config.json's text and the layout of
        adapter_model.safetensors (for hub.services.adapters' add_stream)."""
        return config_text(self.config), weights_layout(self.tensors, _recipe_metadata(recipe_json))


def _recipe_metadata(recipe_json: str | None) -> dict[str, str] | None:
    return {"hub_recipe": recipe_json} if recipe_json else None


def check_parents(parents: list[Parent], drop_dora: bool, drop_modules_to_save: bool) -> list[str]:
    """Refuse what no adapter-only combination can honour; return notes for what is dropped."""
    if not parents:
        raise UsageError("nothing to combine", "hub combine", "name at least one adapter as NAME:WEIGHT")
    notes: list[str] = []
    for p in parents:
        cfg = p.factors.config
        if cfg.get("layer_replication"):
            raise Unsupported(f"adapter {p.name} uses layer_replication, which changes the model's structure",
                              p.name, "combine adapters without layer_replication")
        if p.factors.info.use_dora:
            if not drop_dora:
                raise Unsupported(
                    f"adapter {p.name} is DoRA: its magnitude rescales each row of W+ΔW by the norm of the base "
                    "weight, so no adapter-only combination reproduces it", p.name,
                    "pass --drop-dora to combine only its LoRA part (a plain LoRA that differs from the DoRA "
                    "adapter), or apply it with `hub merge`")
            notes.append(f"{p.name}: DoRA magnitudes dropped (--drop-dora); only the LoRA part is combined")
        replaced = sorted(k for k in p.factors.full_tensors if SAVED_LAYER not in k)
        if replaced:
            if not drop_modules_to_save:
                raise Unsupported(
                    f"adapter {p.name} saves whole modules ({', '.join(replaced[:3])}"
                    f"{', ...' if len(replaced) > 3 else ''}): replaced weights are not deltas and have no "
                    "weighted sum", p.name, "pass --drop-modules-to-save to combine only the LoRA parts")
            notes.append(f"{p.name}: modules_to_save dropped ({', '.join(replaced)})")
    fan = {bool(p.factors.config.get("fan_in_fan_out")) for p in parents}
    if len(fan) > 1:
        raise Incompatible("parents disagree on fan_in_fan_out, so they target different layer types",
                           ", ".join(p.name for p in parents), "combine adapters of the same base model")
    return notes


def _module_findings(path: str, present: list[tuple[Parent, ModuleFactors]]) -> list[Finding]:
    first_parent, first = present[0]
    shape = (first.kind, first.out_features, first.in_features)
    out = []
    for parent, mf in present[1:]:
        other = (mf.kind, mf.out_features, mf.in_features)
        if other != shape:
            out.append(finding("COMBINE_SHAPE_MISMATCH", path,
                               f"{first_parent.name} has {shape[0]} {shape[1]}x{shape[2]} but {parent.name} has "
                               f"{other[0]} {other[1]}x{other[2]}: the adapters are for different base models"))
    return out


def _saved_layers(parents: list[Parent]) -> dict[str, Any]:
    """Embedding weights PEFT saved next to an embedding LoRA: copied if the parents agree."""
    out: dict[str, tuple[str, Any]] = {}
    for p in parents:
        for key, tensor in p.factors.full_tensors.items():
            if SAVED_LAYER not in key:
                continue
            if key in out and not ops(tensor).equal(out[key][1], tensor):
                raise Incompatible(f"{out[key][0]} and {p.name} carry different saved weights for {key}",
                                   f"{out[key][0]}, {p.name}",
                                   "the adapters were trained with different embeddings (resized vocabulary?); "
                                   "they cannot share one adapter")
            out.setdefault(key, (p.name, tensor))
    return {k: v for k, (_, v) in out.items()}


def build_config(parents: list[Parent], ranks: dict[str, int], has_bias: bool) -> dict:
    return plain_lora_config([p.factors.config for p in parents], ranks, has_bias)


def combine(parents: list[Parent], method: str, params: dict | None = None, *,
            layer_weights: list[LayerWeightRule] | tuple = (), drop_dora: bool = False,
            drop_modules_to_save: bool = False, dtype: str = "float32",
            compute_dtype=None,
            progress: Progress | None = None) -> Combination:
    spec: Method = get_method(method)
    resolved = spec.resolve(params or {})
    if dtype not in DTYPES:
        raise UsageError(f"unknown dtype {dtype!r}", "--dtype", f"use one of: {', '.join(DTYPES)}")
    names = {p.name for p in parents}
    for rule in layer_weights:
        if rule.parent is not None and rule.parent not in names:
            raise UsageError(f"layer weight rule names {rule.parent!r}, which is not a parent", "--layer-weights",
                             f"use one of: {', '.join(sorted(names))}")
    notes = check_parents(parents, drop_dora, drop_modules_to_save)

    paths = sorted({path for p in parents for path in p.factors.modules})
    log.debug("combine %s %s of %s over %d modules", spec.name, resolved,
              ", ".join(f"{p.name}:{p.weight:g}" for p in parents), len(paths))
    findings = []
    for path in paths:
        present = [(p, p.factors.modules[path]) for p in parents if path in p.factors.modules]
        findings += _module_findings(path, present)
    if findings:
        more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
        raise Incompatible(findings[0].message + more, findings[0].module,
                           "combine adapters trained on the same base model", findings=findings)

    # the parents' array library: numpy when hub chose it for a factor-space method
    xp = next((ops(mf.A) for p in parents for mf in p.factors.modules.values()), NUMPY)
    if xp.name not in spec.arrays:
        raise UsageError(f"method {spec.name} takes {' or '.join(spec.arrays)} factors, not {xp.name}",
                         "hub.combine.load_factors", f"load the parents with arrays={spec.arrays[0]!r}")
    out_dtype = xp.dtype(dtype)
    compute_dtype = xp.float32 if compute_dtype is None else compute_dtype
    tensors: dict[str, Any] = {}
    reports: list[ModuleReport] = []
    ranks: dict[str, int] = {}
    biases: dict[str, Any] = {}
    dropped: list[str] = []
    rules = list(layer_weights)

    combine_module = spec.function()

    def run(path: str):
        terms = [Term(p.weight * weight_factor(rules, p.name, path), p.factors.modules[path], p.name)
                 for p in parents if path in p.factors.modules]
        if spec.space == "factors":
            terms = [t for t in terms if t.weight != 0]  # exactly zero contribution
        result = combine_module(terms, resolved, ModuleContext(path, resolved.get("seed"), compute_dtype)) if terms else None
        return terms, result

    # modules are independent (DARE seeds are per module), so they may run in any order
    with closing(map_modules(run, paths, xp)) as results:
        for i, (path, (terms, result)) in enumerate(zip(paths, results)):
            if result is None or result.rank == 0:
                dropped.append(path)
            else:
                key_a, key_b = lora_keys(path, terms[0].factors.kind)
                tensors[key_a] = xp.contiguous(xp.astype(result.A, out_dtype))
                tensors[key_b] = xp.contiguous(xp.astype(result.B, out_dtype))
                ranks[path] = result.rank
                reports.append(ModuleReport(path, result.rank, result.energy, result.rel_error,
                                            [t.parent for t in terms]))
                bias_terms = [t for t in terms if t.factors.bias is not None]
                if bias_terms:  # the bias is linear in the weights for every method: its exact weighted sum
                    biases[path] = sum(xp.astype(t.factors.bias, compute_dtype) * (t.weight * t.factors.scaling)
                                       for t in bias_terms)
            if progress:
                progress(i + 1, len(paths), path)
    log.debug("combined: %d modules, ranks %s, %d dropped as zero", len(ranks), sorted(set(ranks.values())),
              len(dropped))
    if dropped:
        notes.append(f"{len(dropped)} module(s) left out because their combined delta is zero: "
                     f"{', '.join(dropped[:5])}{', ...' if len(dropped) > 5 else ''}")
    if not ranks:
        raise UsageError("the combination is zero on every module", ", ".join(sorted(names)),
                         "check the weights (all zero, or parents that cancel)")
    if biases:  # lora_bias=True gives every Linear module a bias: write zeros where no parent had one
        for report in reports:
            b = tensors.get(lora_keys(report.path, "linear")[1])
            if b is not None:
                tensors[bias_key(report.path)] = xp.astype(biases.get(report.path, xp.zeros(b.shape[0], out_dtype)),
                                                           out_dtype)
    for key, tensor in _saved_layers(parents).items():
        tensors[f"base_model.model.{key}"] = tensor
    config = build_config(parents, ranks, has_bias=bool(biases))
    return Combination(spec.name, resolved, config, tensors, reports, notes)


def recipe_metadata(folder: str | Path) -> dict | None:
    """The recipe stored in a combined adapter's safetensors metadata, if any."""
    from hub.formats.safetensors_header import ADAPTER, read_header

    raw = read_header(Path(folder) / "adapter_model.safetensors", ADAPTER).metadata.get("hub_recipe")
    return json.loads(raw) if raw else None
