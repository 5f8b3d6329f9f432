"""Write a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors)
atomically (hub.atomic): a failure leaves no half-written adapter behind."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from hub.atomic import AtomicFolder
from hub.formats.adapter_config import CONFIG_NAME
from hub.formats.adapter_weights import PREFIX, WEIGHTS_NAME
from hub.formats.safetensors_layout import Layout, Tensor, layout


def lora_keys(path: str, kind: str) -> tuple[str, str]:
    """PEFT's saved names for a module's A and B (adapter name stripped)."""
    if kind == "embedding":
        return f"{PREFIX}{path}.lora_embedding_A", f"{PREFIX}{path}.lora_embedding_B"
    return f"{PREFIX}{path}.lora_A.weight", f"{PREFIX}{path}.lora_B.weight"


def bias_key(path: str) -> str:
    return f"{PREFIX}{path}.lora_B.bias"


def config_text(config: dict) -> str:
    """The adapter_config.json hub writes for ``config``."""
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def weights_layout(tensors: dict[str, Any], metadata: dict[str, str] | None = None) -> Layout:
    """adapter_model.safetensors of ``tensors`` (torch tensors or numpy arrays: the same file
    either way), as buffers to write (hub.formats.safetensors_layout)."""
    from hub.combine.arrays import ops

    return layout([Tensor(name, *ops(t).raw(t)) for name, t in tensors.items()], {"format": "pt", **(metadata or {})})


def write_adapter(folder: str | os.PathLike, config: dict, tensors: dict[str, Any],
                  metadata: dict[str, str] | None = None) -> Path:
    """Create ``folder`` (which must not exist, or be empty) holding the adapter."""
    out = AtomicFolder(folder)
    with out as tmp:
        (tmp / CONFIG_NAME).write_text(config_text(config))
        with open(tmp / WEIGHTS_NAME, "wb") as fh:
            for buffer in weights_layout(tensors, metadata).buffers():
                fh.write(buffer)
        out.commit()
    return Path(folder)


def _common(values, default=None):
    values = {v for v in values if v is not None}
    return values.pop() if len(values) == 1 else default


def plain_lora_config(configs: list[dict], ranks: dict[str, int], has_bias: bool, one_alpha: bool = False) -> dict:
    """adapter_config.json of a plain LoRA over ``ranks`` ({module path: rank}), taking the
    task and base from the source ``configs`` where they agree.

    Scaling 1 everywhere (lora_alpha = r, alpha_pattern = rank_pattern) by default: PEFT
    and vLLM (one alpha/r for all modules) then both apply exactly B @ A. ``one_alpha``
    instead keeps a single alpha (scaling alpha/r_i per module, no alpha_pattern), which
    is what llama.cpp's GGUF adapter can express; the writer folds the ratio into the factors."""
    counts = Counter(ranks.values())
    r0 = max(counts, key=lambda r: (counts[r], r))
    # longest path first: PEFT takes the first pattern matching a module's path suffix
    others = sorted((p for p, r in ranks.items() if r != r0), key=lambda p: (-len(p), p))
    return {
        "peft_type": "LORA",
        "task_type": _common(c.get("task_type") for c in configs),
        "base_model_name_or_path": _common((c.get("base_model_name_or_path") for c in configs),
                                           configs[0].get("base_model_name_or_path")),
        "revision": _common(c.get("revision") for c in configs),
        "r": r0,
        "lora_alpha": r0,
        "rank_pattern": {p: ranks[p] for p in others},
        "alpha_pattern": {} if one_alpha else {p: ranks[p] for p in others},
        "target_modules": sorted(ranks),
        "use_rslora": False,
        "use_dora": False,
        "fan_in_fan_out": bool(configs[0].get("fan_in_fan_out")),
        "lora_bias": has_bias,
        "bias": "none",
        "lora_dropout": 0.0,
        "init_lora_weights": True,
        "inference_mode": True,
        "modules_to_save": None,
        "layers_to_transform": None,
        "layers_pattern": None,
    }
