"""Read single tensors of a Hugging Face model folder, one at a time.

pread into a private buffer (hub.merge.reading.read_range), as `hub merge` reads, so a
pass over a model holds one tensor per open reader, not the mapped shards."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from hub.errors import InvalidBaseModel
from hub.formats.base_model import BaseModelInfo, read_base_model
from hub.formats.safetensors_header import SafetensorsHeader, hash_file, read_header
from hub.merge.reading import read_range

HEAD_NAMES = ("lm_head.weight", "embed_out.weight")


class ModelWeights:
    """A model folder's tensors by parameter name (the checkpoint's own or a tied head)."""

    def __init__(self, folder: str | os.PathLike, info: BaseModelInfo | None = None):
        self.info = info or read_base_model(folder)
        self.folder = Path(self.info.path)
        self._headers: dict[str, SafetensorsHeader] = {}
        self._fds: dict[str, int] = {}

    def __enter__(self) -> "ModelWeights":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def resolve(self, name: str) -> str | None:
        """The checkpoint tensor holding parameter ``name``, or None."""
        names = self.info.tensors
        if name in names:
            return name
        head, _, rest = name.partition(".")   # checkpoints saved without the base_model_prefix
        if rest in names:
            return rest
        if name in HEAD_NAMES and self.info.tie_word_embeddings:   # tied output head: the embedding
            return next((n for n in sorted(names) if n.endswith(("embed_tokens.weight", "wte.weight"))),
                        None)
        return None

    def shape(self, name: str) -> tuple[int, ...] | None:
        src = self.resolve(name)
        return None if src is None else tuple(self.info.tensors[src].shape)

    def get(self, name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        src = self.resolve(name)
        if src is None:
            raise InvalidBaseModel(f"the model has no tensor {name}", str(self.folder),
                                   "pass the base model the adapter was trained on")
        t = self.info.tensors[src]
        if t.file not in self._headers:
            self._headers[t.file] = read_header(self.folder / t.file)
            self._fds[t.file] = os.open(self.folder / t.file, os.O_RDONLY)
        entry = self._headers[t.file].tensors[src]
        if entry.dtype not in ("F32", "F16", "BF16", "F64"):
            raise InvalidBaseModel(f"tensor {src} is {entry.dtype}, not a float weight", str(self.folder / t.file),
                                   "use the unquantized model")
        header = self._headers[t.file]
        return read_range(self._fds[t.file], header.data_start + entry.begin, entry.nbytes, entry.dtype,
                          tuple(entry.shape)).to(dtype)

    def content_hash(self) -> str:
        """sha256 over the shards' own sha256s (name order): the weights' identity for lineage."""
        digest = hashlib.sha256()
        for shard in sorted(self.info.shards):
            digest.update(f"{shard}:{hash_file(self.folder / shard)}\n".encode())
        return digest.hexdigest()
