"""What a surgery produced and what it cost, module by module."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from hub.combine.writer import write_adapter


@dataclass
class ModuleChange:
    path: str
    action: str                 # what was done: truncated, kept, folded, dora_to_lora, saved_to_lora, dropped, ...
    rank_before: int | None     # None: the module was not a LoRA module before (saved, or a full weight)
    rank_after: int             # 0: not in the new adapter
    rel_error: float            # ||ΔW_new − ΔW_target||_F / ||ΔW_target||_F (1.0: all of it lost)
    target_norm: float | None   # ||ΔW_target||_F; None when it cannot be measured (no base)
    note: str = ""

    @property
    def energy(self) -> float:
        """Retained fraction of the target's squared norm (for a truncation: 1 − error²)."""
        return max(0.0, 1.0 - self.rel_error ** 2)

    def to_dict(self) -> dict:
        return {**asdict(self), "energy": self.energy}


def total_error(changes: list[ModuleChange]) -> float | None:
    """Energy-weighted total: sqrt(Σ errᵢ²·‖Tᵢ‖² / Σ ‖Tᵢ‖²), the relative error of the whole
    adapter's change seen as one long vector. None when some module's target is unknown."""
    if any(c.target_norm is None for c in changes):
        return None
    den = sum(c.target_norm ** 2 for c in changes)
    num = sum((c.rel_error * c.target_norm) ** 2 for c in changes)
    return math.sqrt(num / den) if den > 0 else 0.0


@dataclass
class Surgery:
    operation: str              # resize | fix | extract
    params: dict
    config: dict
    tensors: dict[str, torch.Tensor]
    changes: list[ModuleChange]
    notes: list[str] = field(default_factory=list)
    changed: bool = True        # False: nothing to do; nothing should be written

    @property
    def total_rel_error(self) -> float | None:
        return total_error(self.changes)

    @property
    def max_rel_error(self) -> float:
        return max((c.rel_error for c in self.changes), default=0.0)

    def summary(self) -> dict:
        ranks = [c.rank_after for c in self.changes if c.rank_after]
        return {"operation": self.operation, "params": self.params, "changed": self.changed,
                "modules": len(ranks), "rank_min": min(ranks, default=0), "rank_max": max(ranks, default=0),
                "max_rel_error": self.max_rel_error, "total_rel_error": self.total_rel_error, "notes": self.notes}

    def table(self) -> list[dict]:
        return [c.to_dict() for c in self.changes]

    def write(self, folder: str | Path, metadata: dict[str, str] | None = None) -> Path:
        return write_adapter(folder, self.config, self.tensors, metadata)
