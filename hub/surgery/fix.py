"""``hub fix``: derive an adapter a serving runtime loads, with each change's measured cost.

Per LoRA module, the target is the change PEFT applies on the base (what
``merge_and_unload`` adds to W), and the new module is the best approximation of it
at the rank the runtime allows:

- rank above the runtime's limit: truncated from the factors (hub.combine.lowrank);
  Eckart–Young makes it the best at that rank.
- DoRA: the effective change (diag(s) − I)·W + diag(s)·ΔW, s = m / ‖W + ΔW‖ per output
  row (hub.merge.maths.dora_merge, PEFT's formula), is full-rank whenever a magnitude
  moved: a truncated SVD of it gives the closest plain LoRA of the module's rank, valid
  only on that base.
- modules_to_save: with the base, the saved weight minus the base's, as a LoRA of the
  adapter's largest rank (1-D tensors such as biases cannot be factors: dropped, with their
  change measured); without a base, dropped (its change cannot be measured).
- rsLoRA and rank/alpha patterns: folded into the factors (every runtime reads one alpha);
  lora_B biases: dropped where the runtime does not load them, their size reported.
"""

from __future__ import annotations


import torch

from hub.combine.factors import AdapterFactors, ModuleFactors
from hub.combine.lowrank import factor_dense
from hub.errors import Unsupported
from hub.formats.adapter_config import unknown_keys
from hub.formats.base_model import is_embedding_name
from hub.merge.maths import dora_merge
from hub.progress import Progress
from hub.surgery.assemble import NewModule, assemble
from hub.surgery.report import ModuleChange, Surgery
from hub.surgery.resize import COMPUTE, truncate_module
from hub.surgery.runtimes import RuntimeNeeds
from hub.surgery.weights import ModelWeights

SAVED_LAYER = ".base_layer."   # the embedding PEFT saves next to an embedding LoRA: kept as is


def dora_target(mf: ModuleFactors, weight: torch.Tensor) -> torch.Tensor:
    """DoRA's effective change on ``weight`` (base layout), returned in LoRA layout (out × in)."""
    W = weight.to(COMPUTE)
    if tuple(W.shape) != ((mf.in_features, mf.out_features) if mf.transposed else (mf.out_features, mf.in_features)):
        raise Unsupported(f"base weight of {mf.path} has shape {tuple(W.shape)}, which the adapter's factors do not fit",
                          mf.path, "pass the base model the adapter was trained on")
    change = dora_merge(W, W, mf.weight_delta(COMPUTE), mf.magnitude.to(COMPUTE), mf.transposed) - W
    return change.T if mf.transposed else change


def dense_to_lora(path: str, kind: str, target: torch.Tensor, rank: int, action: str,
                  rank_before: int | None) -> tuple[NewModule | None, ModuleChange]:
    """Best rank-``rank`` LoRA of a dense target (LoRA layout)."""
    norm = float(target.norm())
    if norm == 0:
        return None, ModuleChange(path, "dropped", rank_before, 0, 0.0, 0.0, "its change is zero")
    result = factor_dense(target, rank, None, rank)
    return (NewModule(path, kind, result.A, result.B),
            ModuleChange(path, action, rank_before, result.rank, result.rel_error, norm))


def _saved_modules(adapter: AdapterFactors) -> dict[str, dict[str, torch.Tensor]]:
    """{module path: {param: tensor}} of the whole modules the adapter replaces."""
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in adapter.full_tensors.items():
        if SAVED_LAYER not in key:
            module, _, param = key.rpartition(".")
            out.setdefault(module, {})[param] = tensor
    return out


def fix(adapter: AdapterFactors, needs: RuntimeNeeds, base: ModelWeights | None = None,
        progress: Progress | None = None) -> Surgery:
    params = {"runtime": needs.name, **({"max_lora_rank": needs.max_rank} if needs.max_rank else {})}
    if needs.name == "peft":
        return _fix_peft(adapter, params)
    saved = _saved_modules(adapter)
    limit = needs.max_rank
    largest = max((m.r for m in adapter.modules.values()), default=adapter.info.r)
    if not _needs_fixing(adapter, needs) and not (limit and largest > limit):
        return Surgery("fix", params, {}, {}, [ModuleChange(p, "kept", m.r, m.r, 0.0, None)
                                               for p, m in sorted(adapter.modules.items())],
                       [f"{needs.name} serves it as it is: nothing written"], changed=False)
    if adapter.info.use_dora and base is None:
        raise Unsupported(f"adapter {adapter.name} is DoRA, which {needs.name} does not serve; its effective change "
                          "depends on the base weights", adapter.name,
                          "pass --base BASE (the model it was trained on) to get the closest plain LoRA on it")
    changes: list[ModuleChange] = []
    modules: list[NewModule] = []
    notes: list[str] = []
    todo = sorted(adapter.modules) + sorted(saved)
    for i, path in enumerate(todo):
        if progress:
            progress(i, len(todo), path)
        if path in adapter.modules:
            mf = adapter.modules[path]
            k = min(mf.r, limit) if limit else mf.r
            if mf.magnitude is not None:
                new, change = dense_to_lora(path, mf.kind, dora_target(mf, base.get(f"{path}.weight")), k,
                                            "dora_to_lora", mf.r)
                if new is not None and mf.bias is not None:
                    new.bias = mf.bias.to(COMPUTE) * mf.scaling
            else:
                new, change = truncate_module(mf, k, None, action="truncated", kept="folded")
            changes.append(change)
            if new is not None and new.bias is not None and not needs.lora_bias:
                changes.append(ModuleChange(f"{path}.lora_B.bias", "dropped", None, 0, 1.0, float(new.bias.norm()),
                                            f"{needs.name} does not load lora_B biases"))
                new.bias = None
        else:
            new = _saved_to_lora(path, saved[path], base, min(largest, limit) if limit else largest, changes,
                                 needs.name)
        if new is not None:
            modules.append(new)
    if progress:
        progress(len(todo), len(todo), "")
    if not modules:
        raise Unsupported(f"nothing of adapter {adapter.name} is left for {needs.name}", adapter.name,
                          "merge it into the base with `hub merge` instead")
    kept = {k: v for k, v in adapter.full_tensors.items() if SAVED_LAYER in k}
    config, tensors = assemble(adapter.config, modules, kept, None, one_alpha=needs.one_alpha)
    if any(c.target_norm is None for c in changes):
        notes.append("modules_to_save were dropped without a base to measure them: pass --base to convert them")
    return Surgery("fix", params, config, tensors, changes, notes)


# `hub check --runtime` findings that fix mends (the others, e.g. a module llama.cpp has no
# slot for, need `hub merge`)
FIXABLE = frozenset({
    "VLLM_RANK_TOO_HIGH", "VLLM_RANK_ABOVE_DEFAULT", "VLLM_MODULES_TO_SAVE", "VLLM_DORA", "VLLM_LORA_BIAS",
    "LLAMACPP_RSLORA", "LLAMACPP_ALPHA_PATTERN", "LLAMACPP_DORA", "LLAMACPP_MODULES_TO_SAVE", "LLAMACPP_LORA_BIAS",
})


def _needs_fixing(adapter: AdapterFactors, needs: RuntimeNeeds) -> bool:
    from hub.compat import AdapterSpec, check_runtime

    spec = AdapterSpec.from_info(adapter.info, adapter.name)
    return any(f.code in FIXABLE for f in check_runtime(spec, needs.name))


def _saved_to_lora(module: str, params: dict[str, torch.Tensor], base: ModelWeights | None, rank: int,
                   changes: list[ModuleChange], runtime: str) -> NewModule | None:
    """A saved whole module as a LoRA of (saved − base) on ``base``; what cannot be, dropped."""
    if base is None:
        changes.append(ModuleChange(module, "dropped", None, 0, 1.0, None,
                                    f"modules_to_save, which {runtime} does not load; pass --base to convert it"))
        return None
    new = None
    for param, saved in sorted(params.items()):
        name = f"{module}.{param}"
        shape = base.shape(name)
        if shape != tuple(saved.shape):
            raise Unsupported(f"saved {name} has shape {tuple(saved.shape)} but the base's is {shape}", name,
                              "pass the base model the adapter was trained on")
        change = saved.to(COMPUTE) - base.get(name, COMPUTE)
        if param == "weight" and change.dim() == 2:
            found = base.info.modules.get(module)
            kind = found.kind if found else ("embedding" if is_embedding_name(module) else "linear")
            target = change.T if kind in ("embedding", "conv1d") else change       # LoRA layout: out × in
            new, entry = dense_to_lora(module, "embedding" if kind == "embedding" else "linear", target,
                                       min(rank, *target.shape), "saved_to_lora", None)
            changes.append(entry)
        else:
            changes.append(ModuleChange(name, "dropped", None, 0, 1.0 if change.norm() > 0 else 0.0,
                                        float(change.norm()), f"a {change.dim()}-D saved tensor cannot be a LoRA "
                                        f"factor and {runtime} does not load modules_to_save"))
    return new


def _fix_peft(adapter: AdapterFactors, params: dict) -> Surgery:
    """PEFT loads everything PEFT saves; what remains is config keys this PEFT does not know."""
    extra = unknown_keys(dict(adapter.config))
    changes = [ModuleChange(p, "kept", m.r, m.r, 0.0, None) for p, m in sorted(adapter.modules.items())]
    if not extra:
        return Surgery("fix", params, {}, {}, changes, ["PEFT loads it as it is: nothing written"], changed=False)
    from safetensors.torch import load_file

    from hub.formats.adapter_weights import WEIGHTS_NAME

    config = {k: v for k, v in adapter.config.items() if k not in extra}
    tensors = load_file(f"{adapter.path}/{WEIGHTS_NAME}")
    return Surgery("fix", params, config, tensors, changes, [f"removed config keys PEFT does not know: {', '.join(extra)}"])
