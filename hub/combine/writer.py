"""Write a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors)
atomically: everything goes into a hidden sibling folder that is renamed into
place at the end, so a failure leaves no half-written adapter behind."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import torch

from hub.errors import AlreadyExists
from hub.formats.adapter_config import CONFIG_NAME
from hub.formats.adapter_weights import PREFIX, WEIGHTS_NAME


def lora_keys(path: str, kind: str) -> tuple[str, str]:
    """PEFT's saved names for a module's A and B (adapter name stripped)."""
    if kind == "embedding":
        return f"{PREFIX}{path}.lora_embedding_A", f"{PREFIX}{path}.lora_embedding_B"
    return f"{PREFIX}{path}.lora_A.weight", f"{PREFIX}{path}.lora_B.weight"


def bias_key(path: str) -> str:
    return f"{PREFIX}{path}.lora_B.bias"


def write_adapter(folder: str | os.PathLike, config: dict, tensors: dict[str, torch.Tensor],
                  metadata: dict[str, str] | None = None) -> Path:
    """Create ``folder`` (which must not exist, or be empty) holding the adapter."""
    from safetensors.torch import save_file

    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise AlreadyExists("output folder exists and is not empty", str(folder), "pick a new folder or remove it")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.{uuid.uuid4().hex}.incomplete"
    tmp.mkdir()
    try:
        (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(tmp / WEIGHTS_NAME),
                  metadata={"format": "pt", **(metadata or {})})
        if folder.is_dir():
            folder.rmdir()  # empty, checked above
        os.rename(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder
