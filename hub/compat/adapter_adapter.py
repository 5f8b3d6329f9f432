"""Adapter <-> adapter: can these adapters be combined by this method?

A method's rule (exact or not, the result's rank, whether ranks must agree) comes from
its declaration: hub's own and plugin methods declare it (hub.combine.declare, read
without torch or the method's maths); PEFT's ``add_weighted_adapter`` combination types
are tabled here as ``peft:<type>``, for users who combine with PEFT and want to know
beforehand what it will do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from hub.compat.specs import AdapterSpec
from hub.errors import UsageError
from hub.findings import Finding, finding, sort_findings


_ROOT = re.compile(r"^(.*?)\.\d+\.")


@dataclass(frozen=True)
class MethodRule:
    name: str
    engine: str            # hub | peft
    exact: bool            # result == weighted sum of deltas
    equal_ranks: bool      # factors are mixed elementwise, so ranks must agree
    rank: str              # sum: Σ rᵢ | k: --rank K (default: largest parent rank) | r: the common rank
    summary: str


def _peft_rules() -> dict[str, MethodRule]:
    rules = []
    for t in ("linear", "ties", "dare_linear", "dare_ties", "magnitude_prune"):
        rules.append(MethodRule(f"peft:{t}", "peft", False, True, "r",
                                f"PEFT add_weighted_adapter('{t}'): mixes A's and B's separately (cross terms)"))
    rules.append(MethodRule("peft:cat", "peft", True, False, "sum", "PEFT add_weighted_adapter('cat'): exact"))
    for t in ("svd", "ties_svd", "dare_linear_svd", "dare_ties_svd", "magnitude_prune_svd"):
        rules.append(MethodRule(f"peft:{t}", "peft", False, False, "k",
                                f"PEFT add_weighted_adapter('{t}'): dense delta then SVD to svd_rank"))
    return {r.name: r for r in rules}


PEFT_RULES: dict[str, MethodRule] = _peft_rules()


def declared_rule(method) -> MethodRule:
    """The rule a hub.combine.declare.Method declares."""
    return MethodRule(method.name, "hub", method.exact, method.equal_ranks, method.rank_rule, method.summary)


def method_rules() -> dict[str, MethodRule]:
    """Every method's rule: hub's built-ins and installed plugins (declarations only), then PEFT's."""
    from hub.combine.registry import all_methods

    return {**{m.name: declared_rule(m) for m in all_methods()}, **PEFT_RULES}


def method_rule(method: str) -> MethodRule:
    if method in PEFT_RULES:
        return PEFT_RULES[method]
    from hub.combine.registry import get_method, method_names

    if method in method_names():
        return declared_rule(get_method(method))
    raise UsageError(f"unknown combination method {method!r}", "--method",
                     f"use one of: {', '.join(method_names() + list(PEFT_RULES))} "
                     "(installed plugins: `hub plugins`)")


def check_adapters(adapters: Sequence[AdapterSpec], method: str, rank: int | None = None,
                   base_fits: Sequence[set | None] | None = None) -> list[Finding]:
    """Findings for combining ``adapters`` with ``method``. ``base_fits`` optionally gives,
    per adapter, the registered bases it is known to fit (None: unknown)."""
    rule = method_rule(method)
    if len(adapters) < 2:
        raise UsageError("combining needs at least two adapters", "hub check A B --method M", "name two or more")
    names = [a.name or f"adapter {i + 1}" for i, a in enumerate(adapters)]
    out: list[Finding] = []
    out += _bases(adapters, names, base_fits)
    out += _shapes(adapters, names)
    out += _targets(adapters, names)
    out += _ranks(adapters, names, rule, rank)
    out += _scaling(adapters, names, rule)
    out += _features(adapters, names, rule)
    return sort_findings(out)


def _bases(adapters, names, base_fits) -> list[Finding]:
    out = []
    if base_fits and all(f is not None for f in base_fits) and len(base_fits) == len(adapters):
        known = [f for f in base_fits if f]
        if len(known) == len(adapters) and not set.intersection(*map(set, known)):
            listed = "; ".join(f"{n}: {', '.join(sorted(map(str, f)))}" for n, f in zip(names, base_fits))
            out.append(finding("NO_COMMON_BASE", None,
                               f"no registered base fits all of them ({listed}): combine adapters of one base"))
    declared = {a.base_model for a in adapters if a.base_name_usable}
    if len(declared) > 1:
        out.append(finding("BASE_NAMES_DIFFER", None,
                           f"the adapters name different bases ({', '.join(sorted(map(str, declared)))}); shapes decide "
                           "whether they can be combined, but fine-tunes of different bases rarely blend well"))
    return out


def _layer_roots(a: AdapterSpec) -> set[str]:
    """Layer containers the adapter's modules live in: model.layers, transformer.h, ..."""
    return {m.group(1) for p in a.modules if (m := _ROOT.match(p))}


def _shapes(adapters, names) -> list[Finding]:
    out = []
    roots = [_layer_roots(a) for a in adapters]
    if all(roots) and not set.intersection(*roots):
        listed = "; ".join(f"{n}: {', '.join(sorted(r))}.N" for n, r in zip(names, roots))
        out.append(finding("ARCHITECTURES_DIFFER", None,
                           f"the adapters' modules live in different layer containers ({listed}): they are for "
                           "different architectures; combine adapters of one base"))
    first: dict[str, tuple[str, tuple]] = {}
    for name, a in zip(names, adapters):
        for path, m in a.modules.items():
            shape = (m.kind, m.in_features, m.out_features)
            if path not in first:
                first[path] = (name, shape)
            elif first[path][1] != shape:
                other, s = first[path]
                out.append(finding("SHAPES_CONFLICT", path,
                                   f"{other} has a {s[0]} {s[1]}->{s[2]} here but {name} has {shape[0]} "
                                   f"{shape[1]}->{shape[2]}: they are for different bases; combine adapters of one "
                                   "base (`hub check NAME --all-bases` tells which)"))
    return out


def _targets(adapters, names) -> list[Finding]:
    sets = [set(a.modules) for a in adapters]
    shared = set.intersection(*sets)
    union = set.union(*sets)
    if not shared:
        return [finding("NO_SHARED_MODULES", None,
                        "the adapters adapt disjoint modules: the result is their union with each module scaled by "
                        "its adapter's weight, nothing is blended; that is fine only if that is what you want")]
    if shared != union:
        only = []
        for name, s in zip(names, sets):
            own = sorted({p.rsplit(".", 1)[-1] for p in s - shared})
            if own:
                only.append(f"{name}: {', '.join(own)}")
        return [finding("TARGETS_DIFFER", None,
                        f"{len(shared)} of {len(union)} modules are shared; the others ({'; '.join(only)}) keep only "
                        "their own adapter's weighted delta")]
    return []


def _ranks(adapters, names, rule: MethodRule, rank: int | None) -> list[Finding]:
    out = []
    if rule.equal_ranks:
        # PEFT allocates the new adapter with each config's largest rank (r or rank_pattern)
        declared = [max([a.r, *(a.config.get("rank_pattern") or {}).values()]) for a in adapters]
        actual = [sorted({m.r for m in a.modules.values()}) for a in adapters]
        if len(set(declared)) > 1 or any(len(r) > 1 for r in actual):
            listed = ", ".join(f"{n}: r={'/'.join(map(str, r))}" for n, r in zip(names, actual))
            out.append(finding("RANKS_DIFFER", None,
                               f"{rule.name} mixes the A and B factors elementwise and needs one rank everywhere, but "
                               f"the ranks differ ({listed}); use `cat` or `linear` (hub's, exact, any ranks) or `svd`"))
            return out
    paths = sorted(set.union(*(set(a.modules) for a in adapters)))
    per_module = []
    for path in paths:
        ranks = [a.modules[path].r for a in adapters if path in a.modules]
        if rule.rank == "sum":
            per_module.append(sum(ranks))
        elif rule.rank == "k":
            per_module.append(rank or max(ranks))
        else:
            per_module.append(max(ranks))
    lo, hi = min(per_module), max(per_module)
    result = str(lo) if lo == hi else f"{lo}-{hi} (per module)"
    how = {"sum": "the sum of the parents' ranks (exact)",
           "k": f"{'--rank ' + str(rank) if rank else 'the largest parent rank per module (pass --rank K to choose)'}"
                + ("; --energy may pick less per module" if rule.engine == "hub" else ""),
           "r": "the parents' common rank"}[rule.rank]
    exact = "exact" if rule.exact else "approximate (hub reports the error per module)" if rule.engine == "hub" \
        else "approximate"
    out.append(finding("RESULT_RANK", None, f"{rule.name} gives rank {result}: {how}; the result is {exact}"))
    return out


def _describe_scaling(a: AdapterSpec) -> str:
    scalings = sorted({round(m.scaling, 6) for m in a.modules.values()})
    rule = f"alpha/sqrt(r) (rsLoRA, alpha={a.lora_alpha:g}, r={a.r})" if a.use_rslora \
        else f"alpha/r (alpha={a.lora_alpha:g}, r={a.r})"
    values = "/".join(f"{s:g}" for s in scalings)
    return f"{rule} = {values}"


def _scaling(adapters, names, rule: MethodRule) -> list[Finding]:
    per = [frozenset(round(m.scaling, 9) for m in a.modules.values()) for a in adapters]
    rslora = {a.use_rslora for a in adapters}
    if len(set(per)) == 1 and len(rslora) == 1:
        return []
    listed = "; ".join(f"{n}: {_describe_scaling(a)}" for n, a in zip(names, adapters))
    how = ("hub folds each adapter's scaling (and weight) into its factors before combining and writes the result "
           "with scaling 1 (lora_alpha = r, use_rslora false)") if rule.engine == "hub" else \
        ("PEFT multiplies each adapter's factors by its scaling before mixing, so the mix is weighted by scaling too; "
         "normalise the weights by the scalings if you meant equal strength")
    return [finding("SCALING_DIFFERS", None, f"the adapters scale differently ({listed}); {how}")]


def _features(adapters, names, rule: MethodRule) -> list[Finding]:
    out = []
    for name, a in zip(names, adapters):
        if a.use_dora:
            tail = ("pass --drop-dora to combine only its LoRA part (a different, plain LoRA), or apply it exactly "
                    "with `hub merge`") if rule.engine == "hub" else \
                "PEFT's add_weighted_adapter silently drops the magnitudes; apply it exactly with `hub merge` instead"
            out.append(finding("DORA_NOT_COMBINABLE", name,
                               "DoRA rescales each row of W+dW by its norm, which depends on the base weights and on "
                               f"every other delta: no adapter can hold the combination exactly; {tail}"))
        if a.config.get("layer_replication"):
            out.append(finding("LAYER_REPLICATION", name,
                               "layer_replication changes the model's structure; combine adapters without it"))
        if a.lora_bias:
            if rule.engine == "hub":
                out.append(finding("LORA_BIAS_COMBINED", name,
                                   "the adapter has lora_B biases: the result carries their weighted sum"))
            else:
                out.append(finding("LORA_BIAS_DROPPED", name,
                                   "the adapter has lora_B biases and add_weighted_adapter does not combine them; "
                                   "use hub's `cat`/`linear`, which sum them"))
    saving = [(n, set(a.modules_to_save) | {k.rsplit(".", 1)[0] for k in a.saved_tensors
                                            if ".base_layer" not in k and k.rsplit(".", 1)[0] not in a.modules})
              for n, a in zip(names, adapters)]
    counts: dict[str, list[str]] = {}
    for n, mods in saving:
        for m in mods:
            counts.setdefault(m, []).append(n)
    for module, owners in sorted(counts.items()):
        if len(owners) > 1:
            out.append(finding("MODULES_TO_SAVE_CONFLICT", module,
                               f"{' and '.join(owners)} each save a full copy of this module; full weights have no "
                               "meaningful weighted sum (PEFT refuses too): drop it from all but one, or merge them "
                               "one after another with `hub merge`"))
        else:
            tail = "hub combine needs --drop-modules-to-save and the result will not carry it" \
                if rule.engine == "hub" else "PEFT's add_weighted_adapter leaves the base's copy in the result"
            out.append(finding("MODULES_TO_SAVE_DROPPED", module,
                               f"{owners[0]} saves a full copy of this module (modules_to_save), which is not a delta: "
                               f"{tail}; merge that adapter into the base instead if you need it"))
    fan = {a.fan_in_fan_out for a in adapters}
    if len(fan) > 1:
        out.append(finding("FAN_IN_FAN_OUT_DIFFERS", None,
                           "the adapters disagree on fan_in_fan_out, so they target different layer types (Conv1D vs "
                           "Linear): combine adapters of one base"))
    if rule.engine == "peft":
        kinds = {type(a.config.get("target_modules")).__name__ for a in adapters}
        if "str" in kinds and len(kinds) > 1:
            out.append(finding("TARGET_TYPES_MIXED", None,
                               "some adapters give target_modules as a regex, others as a list: add_weighted_adapter "
                               "refuses that mix; use hub's methods"))
    return out

