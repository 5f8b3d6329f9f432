"""``hub extract``: a LoRA from a fully fine-tuned model's difference to its base.

Module by module, both models' tensors are read one pair at a time (pread, as `hub merge`
reads), so memory stays near one tensor pair plus the factors. Each changed 2-D weight of a
Linear, Conv1D or Embedding (in LoRA layout: out × in; the embedding and Conv1D
transposed) is factored by randomized SVD (hub.surgery.rsvd) at rank K, or by an exact SVD
when only --energy is given; its error is measured exactly. What becomes a factor is
decided by that error, not by the module's kind: a changed embedding row is exactly rank 1.
A weight whose error stays above --max-error is kept as a LoRA and flagged, or saved whole
(--save-modules, to modules_to_save), or left out (--leave-out). A changed bias of an
extracted Linear becomes its lora_B bias (exact); other 1-D tensors (norms, biases) cannot
be factors: saved whole with --save-modules, otherwise reported as left out. Every changed
tensor appears in the report: nothing is dropped silently.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import torch

from hub.combine.core import module_seed
from hub.combine.lowrank import choose_rank, truncate, zero_tolerance
from hub.errors import Incompatible, UsageError
from hub.progress import Progress
from hub.surgery.assemble import NewModule, assemble
from hub.surgery.report import ModuleChange, Surgery
from hub.surgery.rsvd import randomized_svd
from hub.surgery.weights import ModelWeights

log = logging.getLogger(__name__)

FACTOR_KINDS = ("linear", "conv1d", "embedding")
DEFAULT_MAX_ERROR = 0.5


@dataclass
class Group:
    """One module's parameters, read and decided together."""
    module: str
    kind: str | None                       # linear | conv1d | embedding (factorable), None otherwise
    params: list[str] = field(default_factory=list)   # full tensor names


def plan(base: ModelWeights, tuned: ModelWeights, targets: tuple[str, ...] | None, rank: int | None) -> list[Group]:
    """Group the tensors by module after checking that the two models have the same tensors
    and shapes, and that ``rank`` fits every module it would factor (headers only)."""
    b, t = base.info.tensors, tuned.info.tensors
    for name in sorted(set(b) | set(t)):
        if name not in t or name not in b:
            which, other = ("base", "tuned model") if name in b else ("tuned model", "base")
            raise Incompatible(f"{name} is in the {which} but not in the {other}: they are different architectures",
                               str(tuned.folder), "pass the model the tuned one was fine-tuned from")
        if tuple(b[name].shape) != tuple(t[name].shape):
            raise Incompatible(f"{name} is {tuple(t[name].shape)} in the tuned model but {tuple(b[name].shape)} in "
                               "the base: they are different models (resized vocabulary?)", str(tuned.folder),
                               "pass the model the tuned one was fine-tuned from")
    modules = base.info.modules
    groups: dict[str, Group] = {}
    for name in sorted(b):
        module, _, _ = name.rpartition(".")
        found = modules.get(module)
        kind = found.kind if found is not None and found.kind in FACTOR_KINDS else None
        groups.setdefault(module, Group(module, kind)).params.append(name)
    if rank is not None:
        for g in groups.values():
            weight = f"{g.module}.weight"
            if g.kind and weight in b and len(b[weight].shape) == 2 and selected(g.module, targets):
                most = min(b[weight].shape)
                if rank > most:
                    raise UsageError(f"--rank {rank} is above what {g.module} allows ({most} = min of its "
                                     f"{tuple(b[weight].shape)}): such a LoRA is no smaller than the weight",
                                     g.module, f"use --rank {most} or less, or leave it out with --target")
    return list(groups.values())


def selected(module: str, targets: tuple[str, ...] | None) -> bool:
    """--target takes module-name suffixes (q_proj, mlp.down_proj) or full paths."""
    return not targets or any(module == t or module.endswith("." + t) for t in targets)


def factor(M: torch.Tensor, rank: int | None, energy: float | None, generator: torch.Generator):
    """(ModuleResult, relative error, ||M||) for the best-found approximation of M."""
    norm2 = float(M.double().pow(2).sum())
    if rank is None:                      # energy only: the whole spectrum, exactly
        U, S, Vh = torch.linalg.svd(M, full_matrices=False)
    else:
        U, S, Vh = randomized_svd(M, rank, generator)
    k = choose_rank(S, rank, energy, rank or S.numel(), zero_tolerance(S, tuple(M.shape), float(S[0])))
    if energy is not None and rank is not None:   # the sketch sees only the top ranks: energy of the whole M
        cum = torch.cumsum(S.double() ** 2, 0)
        k = min(k, int(torch.searchsorted(cum, energy * norm2 * (1 - 1e-12)).item()) + 1)
    result = truncate(U, S, Vh, k)
    kept = float((S[:k].double() ** 2).sum())
    rel = math.sqrt(max(0.0, norm2 - kept) / norm2) if norm2 > 0 else 0.0
    return result, rel, math.sqrt(norm2)


def extract(base: ModelWeights, tuned: ModelWeights, rank: int | None = None, energy: float | None = None,
            targets: tuple[str, ...] | None = None, high_error: str = "keep", max_error: float = DEFAULT_MAX_ERROR,
            seed: int = 0, base_name: str | None = None,
            progress: Progress | None = None) -> Surgery:
    """``high_error``: what happens to a weight whose error exceeds ``max_error``:
    keep (as a flagged LoRA), save (whole, modules_to_save) or leave (out)."""
    if high_error not in ("keep", "save", "leave"):
        raise UsageError(f"unknown choice {high_error!r}", "hub extract", "keep, save or leave")
    groups = plan(base, tuned, targets, rank)
    log.debug("extract: %d weight groups, rank %s, energy %s, high error: %s above %g", len(groups), rank, energy,
              high_error, max_error)
    changes: list[ModuleChange] = []
    modules: list[NewModule] = []
    saved: dict[str, torch.Tensor] = {}
    unchanged = 0
    for i, g in enumerate(groups):
        if progress:
            progress(i, len(groups), g.module)
        deltas: dict[str, torch.Tensor] = {}
        for name in g.params:
            d = tuned.get(name)
            d.sub_(base.get(name))        # one pair in memory; the base's copy is freed here
            if torch.count_nonzero(d):
                deltas[name] = d
            else:
                unchanged += 1
        if not deltas:
            continue
        weight = deltas.get(f"{g.module}.weight")
        new = None
        if weight is not None and g.kind and weight.dim() == 2 and selected(g.module, targets):
            M = weight if g.kind == "linear" else weight.T         # LoRA layout: out × in
            gen = torch.Generator().manual_seed(module_seed(seed, g.module))
            result, rel, norm = factor(M, rank, energy, gen)
            if rel > max_error and high_error != "keep":
                changes.append(_whole(g, deltas, tuned, saved, high_error, rel, max_error))
                continue
            new = NewModule(g.module, "embedding" if g.kind == "embedding" else "linear", result.A, result.B)
            note = f"not low-rank at this rank (error > {max_error:g})" if rel > max_error else ""
            changes.append(ModuleChange(g.module, "extracted", None, result.rank, rel, norm, note))
            del deltas[f"{g.module}.weight"]
        rest = [n for n in deltas if not (new is not None and g.kind == "linear" and n == f"{g.module}.bias")]
        if new is not None and f"{g.module}.bias" in deltas and g.kind == "linear":
            new.bias = deltas[f"{g.module}.bias"]                  # PEFT adds lora_B.bias·scaling: exact
            changes.append(ModuleChange(f"{g.module}.bias", "lora_bias", None, 0, 0.0,
                                        float(new.bias.norm()), "as the LoRA's lora_B bias"))
        if new is not None:
            modules.append(new)
        if rest:
            why = ("not in --target" if weight is not None and g.kind and not selected(g.module, targets)
                   else "a 1-D/other tensor cannot be a LoRA factor")
            if high_error == "save" and new is None:
                changes.append(_whole(g, deltas, tuned, saved, "save", None, max_error, why))
            else:
                for n in rest:
                    changes.append(ModuleChange(n, "left_out", None, 0, 1.0, float(deltas[n].norm()),
                                                f"{why}; --save-modules saves it whole"))
    if progress:
        progress(len(groups), len(groups), "")
    if not modules and not saved:
        raise UsageError("the tuned model does not differ from the base", str(tuned.folder),
                         "check that --tuned is the fine-tuned model")
    source = {"task_type": "CAUSAL_LM", "base_model_name_or_path": base_name or str(base.folder),
              "fan_in_fan_out": any(g.kind == "conv1d" for g in groups if any(m.path == g.module for m in modules))}
    mts = sorted({k.rpartition(".")[0] for k in saved})
    config, tensors = assemble(source, modules, saved, mts or None)
    params = {k: v for k, v in (("rank", rank), ("energy", energy), ("target", list(targets) if targets else None),
                                ("high_error", high_error), ("max_error", max_error), ("seed", seed)) if v is not None}
    notes = [f"{unchanged} tensor(s) equal in both models"] if unchanged else []
    return Surgery("extract", params, config, tensors, changes, notes)


def _whole(g: Group, deltas: dict, tuned: ModelWeights, saved: dict, how: str, rel: float | None,
           max_error: float, why: str | None = None) -> ModuleChange:
    """Save a module whole (every parameter, tuned values) or leave it out."""
    norm = math.sqrt(sum(float(d.double().pow(2).sum()) for d in deltas.values()))
    reason = why or f"error {rel:.3g} above --max-error {max_error:g} at this rank"
    if how == "save":
        for name in g.params:
            saved[name] = tuned.get(name)
        return ModuleChange(g.module, "saved", None, 0, 0.0, norm, f"{reason}: saved whole (modules_to_save)")
    return ModuleChange(g.module, "left_out", None, 0, 1.0, norm, reason)
