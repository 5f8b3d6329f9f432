"""Read a Hugging Face model folder (config.json + safetensors, single or sharded)
from its config and safetensors headers only: no weights are loaded."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from hub.errors import InvalidBaseModel, UnsafeFormat
from hub.formats.safetensors_header import read_header

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"


@dataclass(frozen=True)
class BaseTensor:
    name: str          # parameter name as in the checkpoint, e.g. model.layers.0.self_attn.q_proj.weight
    shape: tuple[int, ...]
    dtype: str
    file: str          # shard file name inside the folder


@dataclass(frozen=True)
class BaseModelInfo:
    path: str
    config: dict
    architecture: str | None
    model_type: str | None
    tensors: dict[str, BaseTensor]
    shards: tuple[str, ...]
    size_bytes: int
    dtype: str
    vocab_size: int | None
    hidden_size: int | None
    num_layers: int | None
    tie_word_embeddings: bool
    quantization: dict | None = None
    extra_files: tuple[str, ...] = field(default_factory=tuple)

    @property
    def shape_signature(self) -> str:
        """Hash of every tensor's name and shape: two folders with equal signatures
        accept exactly the same adapters."""
        digest = hashlib.sha256()
        for name in sorted(self.tensors):
            digest.update(f"{name}:{list(self.tensors[name].shape)}\n".encode())
        return digest.hexdigest()


def _shard_files(folder: Path) -> list[str]:
    index = folder / INDEX_NAME
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (ValueError, KeyError, TypeError):
            raise InvalidBaseModel("safetensors index is not valid JSON with a weight_map", str(index),
                                   "re-save the model with save_pretrained") from None
        return sorted(set(weight_map.values()))
    if (folder / SINGLE_NAME).is_file():
        return [SINGLE_NAME]
    loose = sorted(p.name for p in folder.glob("*.safetensors"))
    if loose:
        return loose
    if any(folder.glob("*.bin")) or any(folder.glob("*.pt")):
        raise UnsafeFormat("base model has only pickle weights", str(folder),
                           "hub never unpickles; re-save it with save_pretrained(safe_serialization=True)")
    raise InvalidBaseModel("no safetensors weights found", str(folder), "point at a Hugging Face model folder")


def read_base_model(folder: str | Path) -> BaseModelInfo:
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidBaseModel("base model folder does not exist", str(folder), "check the path")
    cfg_path = folder / "config.json"
    try:
        config = json.loads(cfg_path.read_text())
    except FileNotFoundError:
        raise InvalidBaseModel("config.json is missing", str(folder), "point at a Hugging Face model folder") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidBaseModel(f"config.json is not valid JSON: {exc}", str(cfg_path), "fix or re-save it") from None
    if not isinstance(config, dict):
        raise InvalidBaseModel("config.json is not a JSON object", str(cfg_path), "fix or re-save it")

    tensors: dict[str, BaseTensor] = {}
    size = 0
    shards = _shard_files(folder)
    for shard in shards:
        header = read_header(folder / shard)
        size += header.file_size
        for name, entry in header.tensors.items():
            tensors[name] = BaseTensor(name, entry.shape, entry.dtype, shard)
    dtypes = {t.dtype for t in tensors.values()}
    text_cfg = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    archs = config.get("architectures") or [None]
    return BaseModelInfo(
        path=str(folder), config=config, architecture=archs[0], model_type=config.get("model_type"),
        tensors=tensors, shards=tuple(shards), size_bytes=size,
        dtype=next(iter(dtypes)) if len(dtypes) == 1 else "mixed",
        vocab_size=text_cfg.get("vocab_size"),
        hidden_size=text_cfg.get("hidden_size", text_cfg.get("n_embd")),
        num_layers=text_cfg.get("num_hidden_layers", text_cfg.get("n_layer")),
        tie_word_embeddings=bool(config.get("tie_word_embeddings", text_cfg.get("tie_word_embeddings", True))),
        quantization=config.get("quantization_config"),
        extra_files=tuple(sorted(p.name for p in folder.iterdir()
                                 if p.is_file() and not p.name.endswith(".safetensors") and p.name != INDEX_NAME)),
    )
