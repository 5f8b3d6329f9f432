"""Combining registered adapters into a new registered adapter, and comparing them.

``combine`` resolves the parents by name, runs hub.compat's adapter <-> adapter
check, combines with hub.combine and registers the result with the checks of `hub add`
(hub.services.adapters' add_stream: the PEFT folder's files are written straight into the
store's staging area and hashed as they are written), with the recipe on the adapter and
one lineage row per parent (name, content hash, weight), in one transaction. A failure
leaves the registry and the store as they were.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hub import patterns
from hub.errors import AlreadyExists, Incompatible, UsageError
from hub.findings import Finding, has_errors
from hub.names import check_name, check_weight
from hub.progress import Progress
from hub.refs import parse_ref
from hub.records import AdapterRecord
from hub.registry import adapters as q


# compat findings that the user's explicit opt-in turns from a refusal into a note
_WAIVED_BY = {"drop_dora": {"DORA_NOT_COMBINABLE"}, "drop_modules_to_save": {"MODULES_TO_SAVE_CONFLICT"}}


@dataclass(frozen=True)
class CombineOutcome:
    record: AdapterRecord | None    # None for a dry run
    summary: dict                   # method, params, exact, rank range, min energy, max error, notes
    modules: list                   # hub.combine.engine.ModuleReport
    findings: list[Finding]         # compat's warnings and notes
    recipe: dict
    message: str = ""
    notes: list[str] = field(default_factory=list)
    # a dry run's computed result and what it was computed from, so that running the same
    # combination next (`reuse=`) does not compute it again
    computed: object = field(default=None, repr=False, compare=False)

    def to_dict(self, modules: bool = True) -> dict:
        out = {"name": self.record.name if self.record else self.recipe.get("name"),
               "sha256": self.record.sha256 if self.record else None,
               **self.summary, "findings": [f.to_dict() for f in self.findings], "recipe": self.recipe,
               "message": self.message}
        if modules:
            out["module_reports"] = [m.to_dict() for m in self.modules]
        return out


class CombiningService:
    """`hub combine`, recipes and `hub similar`. Needs the adapters service (parents are read
    from the store; the result is registered through ``add_stream``)."""

    def __init__(self, ctx, adapters):
        self.db, self.store = ctx.db, ctx.store
        self.adapters = adapters

    def combine(self, parents: list[tuple[str, float]], method: str, name: str, params: dict | None = None,
                layer_weights=(), drop_dora: bool = False, drop_modules_to_save: bool = False,
                dtype: str = "float32", tags=(), description: str | None = None, dry_run: bool = False,
                pinned: dict[str, str] | None = None, progress: Progress | None = None,
                reuse: CombineOutcome | None = None) -> CombineOutcome:
        """Combine registered adapters ``parents`` ([(name, weight)]) into a new adapter ``name``.

        ``layer_weights``: rules (hub.combine.LayerWeightRule) or their text form.
        ``pinned``: {parent name: sha256} that the parents must still have (recipes).
        ``reuse``: an earlier dry run; if it was computed from the same inputs (parents'
        content, weights, method, parameters, options), its result is written instead of
        being computed again."""
        from hub.combine import Parent, Recipe, combine, get_method, load_factors, parse_layer_weights
        from hub.combine.factors import arrays_for
        from hub.combine.recipe import ParentSpec
        from hub.inspect import inspect_adapter

        check_name(name)
        parents = [(n, check_weight(float(w), n)) for n, w in parents]
        if not parents:
            raise UsageError("nothing to combine", "hub combine", "name adapters as NAME:WEIGHT")
        with self.db.read() as conn:
            if q.name_taken(conn, name):
                raise AlreadyExists(f"the name {name!r} is already taken", None,
                                    "choose another with --name, or `hub rm` the old one")
        rules = parse_layer_weights(layer_weights) if isinstance(layer_weights, str) else list(layer_weights or ())

        # a parent is known by its ref as written (style, style@2, style@prod): layer weight rules
        # and recipes name it so; lineage records the exact version it resolved to
        labels = [str(parse_ref(n)) for n, _ in parents]
        records = [self.adapters.get(n) for n in labels]
        for label, rec in zip(labels, records):
            want = (pinned or {}).get(label)
            if want and want != rec.sha256:
                raise UsageError(f"adapter {rec.name} changed since the recipe was written "
                                 f"(sha256 {rec.sha256[:12]}, recipe pins {want[:12]})", rec.name,
                                 "register the original content under that name, or remove sha256 from the recipe")
        # the parents are registered under their hashes: their headers are enough here
        infos = [inspect_adapter(self.adapters.adapter_dir(label), hash_files=False) for label in labels]
        findings = self._combine_findings(records, infos, method, params or {}, drop_dora, drop_modules_to_save)

        inputs = (tuple((rec.sha256, float(w)) for rec, (_, w) in zip(records, parents)), method,
                  tuple(sorted((params or {}).items())), repr(rules), drop_dora, drop_modules_to_save, dtype)
        if reuse is not None and reuse.computed is not None and reuse.computed[0] == inputs:
            result = reuse.computed[1]
        else:
            arrays = arrays_for(get_method(method), infos, dtype)
            factors = [load_factors(info.path, name=label, info=info, arrays=arrays)
                       for label, info in zip(labels, infos)]
            with patterns.budget():   # layer_weights regexes, all modules together
                result = combine([Parent(f, w) for f, (_, w) in zip(factors, parents)], method, params,
                                 layer_weights=rules, drop_dora=drop_dora, drop_modules_to_save=drop_modules_to_save,
                                 dtype=dtype, progress=progress)
        recipe = Recipe(method=result.method, parents=[ParentSpec(label, w, rec.sha256)
                                                       for label, rec, (_, w) in zip(labels, records, parents)],
                        params=result.params, name=name, layer_weights=rules, drop_dora=drop_dora,
                        drop_modules_to_save=drop_modules_to_save, dtype=dtype)
        doc = recipe.to_dict()
        summary = result.summary()
        if dry_run:
            return CombineOutcome(None, summary, result.modules, findings, doc, "dry run: nothing written",
                                  result.notes, computed=(inputs, result))

        config_text, weights = result.files(recipe_json=recipe.to_json())
        lineage = [{"type": "adapter", "id": rec.id, "name": rec.name, "sha256": rec.sha256, "weight": w,
                    "version": rec.version} for rec, (_, w) in zip(records, parents)]
        added = self.adapters.add_stream(config_text, weights.buffers(), weights.size, name=name, tags=tags,
                                         source={"kind": "combine"}, recipe=doc, description=description,
                                         lineage=lineage)
        if added.status != "added":
            raise AlreadyExists(f"the combination is identical to the registered adapter {added.record.name!r}",
                                name, "use that adapter, or `hub rm` it first")
        return CombineOutcome(added.record, summary, result.modules, findings, doc,
                              f"combined {len(parents)} adapter(s) into {name} with {result.method}", result.notes)

    def combine_recipe(self, recipe, name: str | None = None, tags=(), dry_run: bool = False,
                       progress: Progress | None = None) -> CombineOutcome:
        """Run a recipe (hub.combine.Recipe or a JSON/YAML file path); ``name`` overrides its name."""
        from hub.combine import Recipe, load_recipe

        if not isinstance(recipe, Recipe):
            recipe = load_recipe(recipe)
        target = name or recipe.name
        if not target:
            raise UsageError("the recipe names no adapter to create", "--recipe", "pass --name NEW")
        return self.combine([(p.name, p.weight) for p in recipe.parents], recipe.method, target, recipe.params,
                            layer_weights=recipe.layer_weights, drop_dora=recipe.drop_dora,
                            drop_modules_to_save=recipe.drop_modules_to_save, dtype=recipe.dtype, tags=tags,
                            dry_run=dry_run, pinned={p.name: p.sha256 for p in recipe.parents if p.sha256},
                            progress=progress)

    def _combine_findings(self, records, infos, method: str, params: dict, drop_dora: bool,
                          drop_modules_to_save: bool) -> list[Finding]:
        """hub.compat's adapter <-> adapter rules; errors refuse, the rest is returned."""
        from hub.combine import get_method

        get_method(method)  # unknown methods fail here, with the method list
        if len(records) < 2:
            return []
        from hub.compat import AdapterSpec, check_adapters

        specs = [AdapterSpec.from_info(info, rec.name) for rec, info in zip(records, infos)]
        rank = params.get("rank") if isinstance(params.get("rank"), int) else None
        waived = set()
        if drop_dora:
            waived |= _WAIVED_BY["drop_dora"]
        if drop_modules_to_save:
            waived |= _WAIVED_BY["drop_modules_to_save"]
        findings = [f for f in check_adapters(specs, method, rank=rank) if f.code not in waived]
        if has_errors(findings):
            errors = [f for f in findings if f.severity == "error"]
            more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
            raise Incompatible(f"{errors[0].message}{more}", errors[0].module or ", ".join(r.name for r in records),
                               "`hub check A B --method M` lists every finding", findings=findings)
        return findings

    def similar(self, names: list[str], samples: int | None = None, seed: int = 0,
                progress: Progress | None = None):
        """Cosine similarity and sign conflicts of registered adapters' deltas (hub.combine.similarity).

        Two or more names: every pair. One name: that adapter against every registered
        adapter sharing at least one module of the same shape, most similar first (signed cosine,
        descending: an adapter pointing the opposite way comes last)."""
        from hub.combine import load_factors
        from hub.combine.similarity import DEFAULT_SAMPLES, compare, norm, similarity

        if not names:
            raise UsageError("name at least one adapter", "hub similar", "hub similar NAME [NAME...]")
        samples = samples or DEFAULT_SAMPLES
        if len(names) > 1:
            factors = []
            for i, n in enumerate(names):
                if progress:
                    progress(i, len(names), n)
                factors.append(load_factors(self.adapters.adapter_dir(n), name=n))
            return similarity(factors, samples=samples, seed=seed)
        target = self.adapters.get(names[0])
        shapes = {p: (m["in_features"], m["out_features"]) for p, m in target.modules.items()}
        others = [r for r in self.adapters.list(full=True) if r.name != target.name and any(
            shapes.get(p) == (m["in_features"], m["out_features"]) for p, m in r.modules.items())]
        mine = load_factors(self.adapters.adapter_dir(target.name), name=target.name)
        report = similarity([mine], samples=samples, seed=seed)
        for i, rec in enumerate(others):
            if progress:
                progress(i, len(others), rec.name)
            other = load_factors(self.adapters.adapter_dir(rec.name), name=rec.name)
            report.adapters.append(rec.name)
            report.norms[rec.name] = norm(other)
            report.pairs.append(compare(mine, other, samples, seed))
        # most similar first: by signed cosine (an opposite adapter, cosine -1, comes last);
        # pairs without a cosine (no shared module) after every number
        report.pairs.sort(key=lambda p: (p.cosine is None, -(p.cosine or 0.0)))
        return report

    def recipe_of(self, name: str) -> dict | None:
        return self.adapters.get(name).recipe


def folder_recipe(folder: str | Path) -> dict | None:
    """The recipe a combined adapter carries in its safetensors metadata (after export too)."""
    from hub.combine.engine import recipe_metadata

    return recipe_metadata(folder)
