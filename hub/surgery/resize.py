"""``hub resize``: the best rank-K (or energy-E) approximation of every module's delta.

Each module's scaled delta s·B A (rsLoRA, rank/alpha patterns and lora weights folded
into s, as hub.inspect resolves them) is factored with the QR + small-core SVD that
``hub combine --method svd`` uses (hub.combine.lowrank): no out × in matrix, no base.
Truncating to the top K singular triplets is, by Eckart–Young, the best rank-K
approximation; its relative error is the norm of the dropped singular values over the
norm of all of them, which is what each ModuleChange reports.
"""

from __future__ import annotations

import logging

import torch

from hub.combine.core import map_modules
from hub.combine.factors import AdapterFactors, ModuleFactors
from hub.combine.lowrank import choose_rank, factored_svd, truncate, zero_tolerance
from hub.errors import Unsupported, UsageError
from hub.surgery.assemble import NewModule, assemble
from hub.surgery.report import ModuleChange, Surgery

log = logging.getLogger(__name__)

COMPUTE = torch.float64   # factors are small (r columns): exactness is cheap here


def check_rank_energy(rank: int | None, energy: float | None, where: str) -> None:
    if rank is None and energy is None:
        raise UsageError("pass --rank K, --energy E or both", where, "e.g. --rank 8 or --energy 0.99")
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 1):
        raise UsageError(f"--rank must be a whole number >= 1, got {rank!r}", where, "e.g. --rank 8")
    if energy is not None and not (0.0 < energy <= 1.0):   # also refuses NaN
        raise UsageError(f"--energy must be in (0, 1], got {energy!r}", where, "e.g. --energy 0.99")


def truncate_module(mf: ModuleFactors, rank: int | None, energy: float | None,
                    action: str = "truncated", kept: str = "kept") -> tuple[NewModule | None, ModuleChange]:
    """The best approximation of mf's scaled delta with at most ``rank`` triplets (and/or
    keeping ``energy``), as a module with scaling 1, and what it cost."""
    B, A = mf.B.to(COMPUTE), mf.A.to(COMPUTE) * mf.scaling
    f = factored_svd(B, A)
    scale = abs(mf.scaling) * float(mf.B.norm()) * float(mf.A.norm())
    k = choose_rank(f.S, rank, energy, mf.r, zero_tolerance(f.S, (mf.out_features, mf.in_features), scale))
    U, Vh = f.top(k)
    result = truncate(U, f.S, Vh, k)
    norm = float(f.S.double().norm())
    err = result.rel_error
    bias = mf.bias.to(COMPUTE) * mf.scaling if mf.bias is not None else None
    if k == 0:
        return None, ModuleChange(mf.path, "dropped", mf.r, 0, 0.0 if norm == 0 else 1.0, norm,
                                  "its delta is zero")
    if k == mf.r:
        action = kept
    return (NewModule(mf.path, mf.kind, result.A, result.B, bias),
            ModuleChange(mf.path, action, mf.r, k, err, norm))


def resize(adapter: AdapterFactors, rank: int | None = None, energy: float | None = None,
           dtype: torch.dtype = torch.float32) -> Surgery:
    """Resize every LoRA module of ``adapter`` (DoRA refused: see ``hub fix``)."""
    check_rank_energy(rank, energy, adapter.name)
    log.debug("resize %s: rank %s, energy %s, %d modules", adapter.name, rank, energy, len(adapter.modules))
    if adapter.info.use_dora:
        raise Unsupported(f"adapter {adapter.name} is DoRA: its effective change depends on the base weights, "
                          "so truncating its factors is not the best approximation of it", adapter.name,
                          f"use `hub fix {adapter.name} --runtime peft --base BASE` (or --runtime vllm "
                          "--max-lora-rank K) to get the plain LoRA closest to it on that base")
    if adapter.config.get("layer_replication"):
        raise Unsupported(f"adapter {adapter.name} uses layer_replication", adapter.name,
                          "resize adapters without layer_replication")
    paths = sorted(adapter.modules)
    results = list(map_modules(lambda p: truncate_module(adapter.modules[p], rank, energy), paths))
    changes = [c for _, c in results]
    modules = [m for m, _ in results if m is not None]
    params = {k: v for k, v in (("rank", rank), ("energy", energy)) if v is not None}
    notes = [f"{c.path}: left out, {c.note}" for c in changes if c.rank_after == 0]
    changed = any(c.rank_after < (c.rank_before or 0) for c in changes)
    if not changed:
        largest = max((m.r for m in adapter.modules.values()), default=0)
        return Surgery("resize", params, {}, {}, changes,
                       notes + [f"no module's rank drops (largest rank {largest}): nothing written"], changed=False)
    if not modules:
        raise UsageError("every module's delta is zero", adapter.name, "nothing to resize")
    config, tensors = assemble(adapter.config, modules, adapter.full_tensors, adapter.config.get("modules_to_save"),
                               dtype=dtype)
    return Surgery("resize", params, config, tensors, changes, notes)
