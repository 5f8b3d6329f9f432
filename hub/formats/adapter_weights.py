"""Interpret the tensor names of a PEFT LoRA ``adapter_model.safetensors``.

PEFT saves ``base_model.model.<module path>.<part>[.weight|.bias]`` with the
adapter name stripped. Parts: lora_A / lora_B (Linear, Conv1D), lora_embedding_A /
lora_embedding_B (Embedding), lora_magnitude_vector (DoRA). Any other tensor is a
full replacement for a base parameter (modules_to_save, or the embedding layers
PEFT saves alongside an embedding LoRA as ``<path>.base_layer.weight``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

PREFIX = "base_model.model."
WEIGHTS_NAME = "adapter_model.safetensors"
PICKLE_NAMES = ("adapter_model.bin", "adapter_model.pt", "adapter_model.pth")

_LORA_KEY = re.compile(
    r"^(?P<path>.+?)\.(?P<part>lora_A|lora_B|lora_embedding_A|lora_embedding_B|lora_magnitude_vector)"
    r"(?:\.(?P<param>weight|bias))?$"
)


@dataclass
class RawModule:
    path: str
    tensors: dict[str, str] = field(default_factory=dict)  # role -> tensor key; role in A, B, B_bias, magnitude

    @property
    def is_embedding(self) -> bool:
        return "A" in self.tensors and ".lora_embedding_A" in self.tensors["A"]


def strip_prefix(key: str) -> str:
    return key[len(PREFIX):] if key.startswith(PREFIX) else key


def split_keys(keys) -> tuple[dict[str, RawModule], dict[str, str]]:
    """-> ({module path: RawModule}, {base parameter name: tensor key} for full tensors)."""
    modules: dict[str, RawModule] = {}
    full: dict[str, str] = {}
    for key in keys:
        name = strip_prefix(key)
        m = _LORA_KEY.match(name)
        if not m:
            full[name.replace(".base_layer.", ".")] = key
            continue
        part, param = m["part"], m["param"]
        role = {
            "lora_A": "A", "lora_embedding_A": "A", "lora_B": "B", "lora_embedding_B": "B",
            "lora_magnitude_vector": "magnitude",
        }[part]
        if role == "B" and param == "bias":
            role = "B_bias"
        elif param == "bias":
            role = f"{role}_bias"
        modules.setdefault(m["path"], RawModule(m["path"])).tensors[role] = key
    return modules, full


def layer_index(path: str) -> int | None:
    m = re.search(r"\.(\d+)\.", f".{path}.")
    return int(m.group(1)) if m else None
