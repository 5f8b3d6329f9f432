"""Read a Hugging Face model folder (config.json + safetensors, single or sharded)
from its config and safetensors headers only: no weights are loaded.

Besides the raw tensor table, a base has a *module table*: every weight-bearing
module a LoRA can target, with its kind (linear, conv1d, embedding) and its logical
in/out features. Adapters are checked against that table, so it must see through
checkpoint layouts: GPT-2's Conv1D stores (in, out), GPTQ/AWQ pack weights into
int32 ``qweight``, bitsandbytes 4-bit flattens them (the logical shape sits in a
small JSON ``quant_state`` tensor, the only tensor bytes this module ever reads).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Mapping

from hub.errors import InvalidBaseModel, UnsafeFormat
from hub.formats.quantization import quant_method
from hub.formats.safetensors_header import read_header

log = logging.getLogger(__name__)

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"


@dataclass(frozen=True)
class BaseTensor:
    name: str          # parameter name as in the checkpoint, e.g. model.layers.0.self_attn.q_proj.weight
    shape: tuple[int, ...]
    dtype: str
    file: str          # shard file name inside the folder
    logical_shape: tuple[int, ...] | None = None  # unpacked shape of a bitsandbytes 4-bit weight


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
    quant_state: dict | None = None    # bitsandbytes 4-bit: the first packed weight's quant_state JSON

    @property
    def quant_scheme(self) -> dict | None:
        """bitsandbytes: method, bits, block size, double quantization, stored and compute dtypes."""
        from hub.formats.bnb import describe

        return describe(self.quantization, self.quant_state, self.config)

    @property
    def shape_signature(self) -> str:
        """Hash of every tensor's name and shape: two folders with equal signatures
        accept exactly the same adapters."""
        digest = hashlib.sha256()
        for name in sorted(self.tensors):
            digest.update(f"{name}:{list(self.tensors[name].shape)}\n".encode())
        return digest.hexdigest()

    def shape_table(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """{tensor name: (logical shape, dtype)}: what the registry stores and compat reads."""
        return {n: (t.logical_shape or t.shape, t.dtype) for n, t in self.tensors.items()}

    @cached_property
    def modules(self) -> dict[str, "BaseModule"]:
        return module_table(self.shape_table(), self.model_type, self.quantization,
                            self.tie_word_embeddings, self.vocab_size)

    @property
    def param_count(self) -> int:
        return logical_param_count(self.shape_table(), self.quantization)


# -- module table ------------------------------------------------------------------------

# transformers models whose projections are Conv1D (weight stored as (in, out))
CONV1D_MODEL_TYPES = frozenset({"gpt2", "openai-gpt", "decision_transformer", "imagegpt"})
EMBEDDING_NAMES = frozenset({
    "embed_tokens", "wte", "wpe", "word_embeddings", "position_embeddings", "token_type_embeddings",
    "embed_positions", "embed_in", "tok_embeddings", "shared", "embeddings", "embedding",
})
OUTPUT_HEADS = ("lm_head", "embed_out", "output")   # where a tied output projection lives
FLOAT_DTYPES = frozenset({"F16", "BF16", "F32", "F64"})


@dataclass(frozen=True)
class BaseModule:
    kind: str                     # linear | conv1d | embedding
    in_features: int | None       # embedding: number of embeddings; None when a packed layout hides it
    out_features: int | None      # embedding: embedding dim
    dtype: str
    quantized: str | None = None  # quant method when the weight is packed
    numel: int | None = None      # when only the element count is known
    tied_to: str | None = None    # tensor that really holds the weight (tied output heads)


def is_embedding_name(module_path: str) -> bool:
    leaf = module_path.rsplit(".", 1)[-1]
    if leaf in EMBEDDING_NAMES or leaf.endswith(("_embeddings", "_embedding")):
        return True
    return leaf.startswith("embed") and leaf != "embed_out"


def quant_bits(quantization) -> int | None:
    if not isinstance(quantization, dict):
        return None
    if quantization.get("load_in_4bit") or quantization.get("_load_in_4bit"):
        return 4
    if quantization.get("load_in_8bit") or quantization.get("_load_in_8bit"):
        return 8
    bits = quantization.get("bits", quantization.get("w_bit"))
    return int(bits) if isinstance(bits, (int, float)) else None


def module_table(shapes: Mapping[str, tuple], model_type: str | None, quantization: dict | None = None,
                 tie_word_embeddings: bool = False, vocab_size: int | None = None) -> dict[str, BaseModule]:
    """Every module a LoRA can wrap -> kind and logical in/out features.

    ``shapes`` maps tensor names to (shape, dtype), as :meth:`BaseModelInfo.shape_table`
    returns and the registry stores. Pure: no file is touched.
    """
    method = quant_method(quantization)
    bits = quant_bits(quantization) or 4
    conv1d = (model_type or "").lower() in CONV1D_MODEL_TYPES
    out: dict[str, BaseModule] = {}
    for name, (shape, dtype) in shapes.items():
        shape = tuple(shape)
        if name.endswith(".qweight") and len(shape) == 2 and method in ("gptq", "awq"):
            path = name[: -len(".qweight")]
            if method == "gptq":          # qweight (in * bits / 32, out), g_idx (in,)
                g_idx = shapes.get(f"{path}.g_idx")
                in_f = tuple(g_idx[0])[0] if g_idx else shape[0] * 32 // bits
                out_f = shape[1]
            else:                         # AWQ GEMM: qweight (in, out * bits / 32), scales (groups, out)
                scales = shapes.get(f"{path}.scales")
                in_f = shape[0]
                out_f = tuple(scales[0])[1] if scales else shape[1] * 32 // bits
            out[path] = BaseModule("linear", in_f, out_f, dtype, quantized=method)
            continue
        if not name.endswith(".weight") or len(shape) != 2:
            continue
        path = name[: -len(".weight")]
        packed = dtype == "U8" and shape[1] == 1 and method == "bitsandbytes"
        if packed:                        # bnb 4-bit without a readable quant_state
            out[path] = BaseModule("linear", None, None, dtype, quantized=method, numel=shape[0] * 2)
            continue
        quantized = method if method and dtype in ("I8", "U8", "F8_E4M3", "F8_E5M2") else None
        if is_embedding_name(path):
            out[path] = BaseModule("embedding", shape[0], shape[1], dtype, quantized)
        elif conv1d and path.rsplit(".", 1)[-1] not in OUTPUT_HEADS:
            out[path] = BaseModule("conv1d", shape[0], shape[1], dtype, quantized)
        else:
            out[path] = BaseModule("linear", shape[1], shape[0], dtype, quantized)
    if tie_word_embeddings and not any(h in out for h in OUTPUT_HEADS):
        # the checkpoint omits lm_head.weight, but the module exists (sharing embed_tokens'
        # weight) and adapters can target it or save it
        embed = input_embedding(out, vocab_size)
        if embed is not None:
            e = out[embed]
            out["lm_head"] = BaseModule("linear", e.out_features, e.in_features, e.dtype, e.quantized,
                                        tied_to=f"{embed}.weight")
    return out


def input_embedding(modules: Mapping[str, BaseModule], vocab_size: int | None) -> str | None:
    """The token embedding: an embedding module (not positions or token types) whose
    row count is the vocabulary, else the largest such embedding (padded vocabularies)."""
    tokens = [p for p, m in modules.items() if m.kind == "embedding"
              and not any(s in p.rsplit(".", 1)[-1] for s in ("position", "wpe", "token_type"))]
    exact = [p for p in tokens if vocab_size and modules[p].in_features == vocab_size]
    if exact:
        return exact[0]
    return max(tokens, key=lambda p: modules[p].in_features or 0, default=None)


def logical_param_count(shapes: Mapping[str, tuple], quantization: dict | None) -> int:
    """Parameters of the unquantized model (what a dequantized merge would write)."""
    modules = module_table(shapes, None, quantization) if quant_method(quantization) else {}
    packed = {p for p, m in modules.items() if m.quantized}
    total = 0
    for path, m in modules.items():
        if m.quantized:
            total += m.numel if m.numel is not None else (m.in_features or 0) * (m.out_features or 0)
    for name, (shape, dtype) in shapes.items():
        owner = name.rsplit(".", 1)[0]
        if owner in packed or any(name.startswith(p + ".weight.") for p in packed):
            if name.endswith(".bias"):
                total += math.prod(shape)
            continue
        total += math.prod(shape)
    return total


MAX_CONFIG_BYTES = 16 * 1024 * 1024
MAX_INDEX_BYTES = 64 * 1024 * 1024   # a weight_map of a few hundred thousand tensors


def _read_small(path: Path, max_bytes: int) -> str:
    """A model folder's JSON file: a regular file (no FIFO, no /dev/zero) of bounded size."""
    from hub.checked_files import FileTooLarge, NotRegularFile, read_regular

    try:
        return read_regular(path, max_bytes).decode("utf-8")
    except (NotRegularFile, FileTooLarge) as exc:
        raise InvalidBaseModel(f"{path.name} is {exc.strerror}", str(path), "point at a Hugging Face model folder") \
            from None


def _shard_files(folder: Path) -> list[str]:
    index = folder / INDEX_NAME
    if index.is_file():
        try:
            weight_map = json.loads(_read_small(index, MAX_INDEX_BYTES))["weight_map"]
        except InvalidBaseModel:   # a ValueError too: _read_small's own message stands
            raise
        except (ValueError, KeyError, TypeError, RecursionError):
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
    log.debug("reading base model %s (config and safetensors headers)", folder)
    if not folder.is_dir():
        raise InvalidBaseModel("base model folder does not exist", str(folder), "check the path")
    cfg_path = folder / "config.json"
    try:
        config = json.loads(_read_small(cfg_path, MAX_CONFIG_BYTES))
    except InvalidBaseModel:
        raise
    except FileNotFoundError:
        raise InvalidBaseModel("config.json is missing", str(folder), "point at a Hugging Face model folder") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
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
    state = None
    if quant_method(config.get("quantization_config")) == "bitsandbytes":
        tensors, state = _unpack_bnb_shapes(folder, tensors)
    # a quantized checkpoint's dtype is its compute dtype (GPTQ scales), not the packed ints
    floats = {t.dtype for t in tensors.values() if t.dtype in FLOAT_DTYPES}
    dtypes = floats or {t.dtype for t in tensors.values()}
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
        quant_state=state,
    )


def _unpack_bnb_shapes(folder: Path, tensors: dict[str, BaseTensor]) -> tuple[dict[str, BaseTensor], dict | None]:
    """bitsandbytes 4-bit stores ``W.weight`` flattened (numel/2, 1) and the real shape
    in ``W.weight.quant_state.bitsandbytes__nf4|fp4``: a few hundred bytes of JSON.
    Returns the tensors with their logical shapes, and the first quant_state read."""
    from hub.formats import bnb
    from hub.formats.safetensors_header import read_header

    out = dict(tensors)
    first = None
    headers: dict = {}
    for name, t in tensors.items():
        if ".quant_state.bitsandbytes__" not in name:
            continue
        weight = name.split(".quant_state.")[0]
        if weight not in tensors:
            continue
        if t.file not in headers:
            headers[t.file] = read_header(folder / t.file)
        entry = headers[t.file].tensors[name]
        if entry.nbytes > 1 << 16:
            continue                      # not the small JSON blob bitsandbytes writes
        with open(folder / t.file, "rb") as fh:
            fh.seek(headers[t.file].data_start + entry.begin)
            raw = fh.read(entry.nbytes)
        try:
            state = bnb.parse_state(raw, f"{t.file}: {name}")
        except InvalidBaseModel:
            continue                      # unreadable: the weight keeps its packed shape
        shape = tuple(state["shape"])
        first = first or state
        w = tensors[weight]
        out[weight] = BaseTensor(w.name, w.shape, w.dtype, w.file, logical_shape=shape)
    return out, first
