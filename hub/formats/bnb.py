"""bitsandbytes checkpoints as transformers saves them, tensor by tensor.

Per 4-bit weight ``W``: ``W.weight`` (packed uint8, (n/2, 1)), ``W.weight.absmax``,
``W.weight.quant_map`` and, with double quantization, ``W.weight.nested_absmax`` and
``W.weight.nested_quant_map``; plus ``W.weight.quant_state.bitsandbytes__nf4|fp4``, a
small uint8 tensor holding JSON (quant type, block size, dtype, shape, nested
block size/dtype/offset). Per 8-bit weight: int8 ``W.weight``, fp32 ``W.SCB`` and a
uint8 scalar ``W.weight_format`` (0: row-major). ``config.json`` carries
``quantization_config`` with ``load_in_4bit``/``load_in_8bit``.

Other quantized formats (GPTQ, AWQ, GGUF, ...) are refused here with the formats that work.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from hub.errors import InvalidBaseModel, Unsupported
from hub.formats.quantization import quant_method
from hub.quant.scheme import BLOCKSIZES_4BIT, DTYPES, QuantScheme

STATE_PREFIX = "quant_state.bitsandbytes__"
AUX_4BIT = ("absmax", "quant_map", "nested_absmax", "nested_quant_map")
# the JSON's only variable-length value is the nested offset (a float's repr, at most 24 characters):
# reserving room for the longest lets a shard's header be written before any tensor is quantized
OFFSET_ROOM = 24
MAX_NUMEL = 1 << 40   # far above any real weight; bounds what a forged shape can ask to allocate
RESAVE = "re-save the model with transformers"
WORKING_FORMATS = ("full-precision safetensors (fp32, fp16, bf16)",
                   "bitsandbytes 4-bit (nf4, fp4) or 8-bit checkpoints saved by transformers")


def refuse_unsupported(quantization, where: str) -> None:
    """One clear refusal for quantized formats hub cannot dequantize exactly."""
    method = quant_method(quantization)
    if method in (None, "bitsandbytes"):
        return
    raise Unsupported(f"the base is {method.upper()}-quantized; hub merges into "
                      f"{' or '.join(WORKING_FORMATS)}", where,
                      "merge into the unquantized base (optionally with --as-quantized nf4|fp4|int8)")


def refuse_gguf(folder: Path) -> None:
    if folder.is_file() and folder.suffix == ".gguf" or folder.is_dir() and any(folder.glob("*.gguf")) \
            and not any(folder.glob("*.safetensors")):
        raise Unsupported(f"the base is a GGUF file (llama.cpp quantization); hub merges into "
                          f"{' or '.join(WORKING_FORMATS)}", str(folder),
                          "merge into the original Hugging Face model folder")


def describe(quantization, state: dict | None, config: dict) -> dict | None:
    """What `hub base add` records and `hub check` says of a bitsandbytes base (None for others)."""
    if quant_method(quantization) != "bitsandbytes":
        return None
    return scheme_of(quantization, state, config.get("dtype") or config.get("torch_dtype")).to_dict()


def scheme_of(quantization: dict, state: dict | None, config_dtype: str | None) -> QuantScheme:
    """The scheme of a bitsandbytes checkpoint, from its config and one weight's quant_state JSON."""
    compute = quantization.get("bnb_4bit_compute_dtype")
    if quantization.get("load_in_8bit") or quantization.get("_load_in_8bit"):
        return QuantScheme("int8", None, False, config_dtype or "float16", None)
    state = state or {}
    return QuantScheme(
        method=str(state.get("quant_type") or quantization.get("bnb_4bit_quant_type") or "fp4"),
        blocksize=int(state.get("blocksize") or 64),
        double_quant="nested_blocksize" in state if state else bool(quantization.get("bnb_4bit_use_double_quant")),
        dtype=str(state.get("dtype") or config_dtype or "float32"),
        compute_dtype=str(compute) if compute else None,
    )


def quantization_config(scheme: QuantScheme) -> dict:
    """``quantization_config`` as transformers writes it for ``BitsAndBytesConfig(...)``."""
    four = scheme.bits == 4
    return {
        "_load_in_4bit": four, "_load_in_8bit": not four,
        "bnb_4bit_compute_dtype": scheme.compute_dtype or "float32",
        "bnb_4bit_quant_storage": "uint8",
        "bnb_4bit_quant_type": scheme.method if four else "fp4",
        "bnb_4bit_use_double_quant": bool(scheme.double_quant) if four else False,
        "llm_int8_enable_fp32_cpu_offload": False, "llm_int8_has_fp16_weight": False,
        "llm_int8_skip_modules": None, "llm_int8_threshold": 6.0,
        "load_in_4bit": four, "load_in_8bit": not four, "quant_method": "bitsandbytes",
    }


def parse_state(raw: bytes, where: str = "quant_state") -> dict:
    """A 4-bit weight's quant_state JSON, checked: what a forged one holds drives the dequantization
    (block size, shape, offset), so anything bitsandbytes would not write is refused in one line."""
    try:
        state = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        state = None
    problem = _state_problem(state)
    if problem:
        raise InvalidBaseModel(f"a packed weight's quant_state {problem}", where, RESAVE)
    return state


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _state_problem(state) -> str | None:
    if not isinstance(state, dict):
        return "is not a JSON object"
    if state.get("quant_type") not in ("nf4", "fp4"):
        return "names no 4-bit type (nf4 or fp4)"
    if state.get("blocksize") not in BLOCKSIZES_4BIT or not _is_int(state["blocksize"]):
        return f"has a block size outside {', '.join(map(str, BLOCKSIZES_4BIT))}"
    if state.get("dtype") not in DTYPES:
        return f"has a dtype outside {', '.join(DTYPES)}"
    shape = state.get("shape")
    if not isinstance(shape, list) or not shape or not all(_is_int(d) and d >= 1 for d in shape) \
            or math.prod(shape) > MAX_NUMEL:
        return "has no valid shape (positive whole numbers)"
    if "nested_blocksize" in state:
        offset = state.get("nested_offset")
        if state["nested_blocksize"] not in BLOCKSIZES_4BIT or not _is_int(state["nested_blocksize"]):
            return f"has a nested block size outside {', '.join(map(str, BLOCKSIZES_4BIT))}"
        if not isinstance(offset, (int, float)) or isinstance(offset, bool) or not math.isfinite(offset):
            return "has no finite nested offset"
    return None


def state_json(packed, padded: bool) -> bytes:
    doc = {"quant_type": packed.quant_type, "blocksize": packed.blocksize, "dtype": packed.dtype,
           "shape": list(packed.shape)}
    if packed.nested is not None:
        doc.update(nested_blocksize=packed.nested.blocksize, nested_dtype="float32", nested_offset=packed.nested.offset)
    raw = json.dumps(doc).encode()
    if padded:
        raw += b" " * (state_size(packed.quant_type, packed.dtype, packed.shape, packed.nested is not None) - len(raw))
    return raw


def state_size(quant_type: str, dtype: str, shape: tuple[int, ...], nested: bool) -> int:
    probe = {"quant_type": quant_type, "blocksize": 0, "dtype": dtype, "shape": list(shape)}
    if nested:
        probe.update(nested_blocksize=256, nested_dtype="float32", nested_offset=0)
    # blocksize takes at most 4 digits, the offset OFFSET_ROOM characters (the probe holds 1 of each)
    return len(json.dumps(probe)) + 3 + (OFFSET_ROOM - 1 if nested else 0)


@dataclass(frozen=True)
class Entry:
    key: str
    dtype: str        # safetensors dtype
    shape: tuple[int, ...]


def entries_4bit(weight_key: str, scheme: QuantScheme, shape: tuple[int, ...], dtype: str) -> list[Entry]:
    """The tensors a 4-bit weight becomes, in writing order, with their sizes known in advance."""
    n = 1
    for dim in shape:
        n *= dim
    blocks = -(n // -scheme.blocksize)
    out = [Entry(weight_key, "U8", (-(n // -2), 1))]
    if scheme.double_quant:
        out += [Entry(f"{weight_key}.absmax", "U8", (blocks,)),
                Entry(f"{weight_key}.nested_absmax", "F32", (-(blocks // -256),)),
                Entry(f"{weight_key}.nested_quant_map", "F32", (256,))]
    else:
        out.append(Entry(f"{weight_key}.absmax", "F32", (blocks,)))
    out += [Entry(f"{weight_key}.quant_map", "F32", (16,)),
            Entry(f"{weight_key}.{STATE_PREFIX}{scheme.method}", "U8",
                  (state_size(scheme.method, dtype, shape, scheme.double_quant),))]
    return out


def entries_int8(weight_key: str, shape: tuple[int, ...]) -> list[Entry]:
    module = weight_key[: -len(".weight")]
    return [Entry(weight_key, "I8", tuple(shape)), Entry(f"{module}.SCB", "F32", (shape[0],)),
            Entry(f"{module}.weight_format", "U8", ())]


def tensors_of(weight_key: str, packed) -> list:
    """The checkpoint tensors of one packed weight, in the order of ``entries_*``."""
    import torch

    from hub.quant.packing import PackedInt8
    if isinstance(packed, PackedInt8):
        module = weight_key[: -len(".weight")]
        return [(weight_key, packed.data), (f"{module}.SCB", packed.scb),
                (f"{module}.weight_format", torch.tensor(0, dtype=torch.uint8))]
    out = [(weight_key, packed.data), (f"{weight_key}.absmax", packed.absmax)]
    if packed.nested is not None:
        out += [(f"{weight_key}.nested_absmax", packed.nested.absmax),
                (f"{weight_key}.nested_quant_map", packed.nested.code)]
    raw = state_json(packed, padded=True)
    out += [(f"{weight_key}.quant_map", packed.code),
            (f"{weight_key}.{STATE_PREFIX}{packed.quant_type}", torch.frombuffer(bytearray(raw), dtype=torch.uint8))]
    return out


def group_keys(weight_key: str, names) -> list[str]:
    """Every checkpoint tensor that belongs to the packed weight ``weight_key`` (itself first)."""
    module = weight_key[: -len(".weight")]
    aux = [k for k in names if k.startswith(weight_key + ".")]
    aux += [k for k in (f"{module}.SCB", f"{module}.weight_format") if k in names]
    return [weight_key] + sorted(aux)


def packed_from(weight_key: str, tensors: dict, where: str | None = None):
    """Rebuild a packed weight from its checkpoint tensors (as read by ``group_keys``), its parts'
    sizes checked against its quant_state (``where`` names it in errors: file and key)."""
    from hub.quant.packing import Nested, Packed4bit, PackedInt8

    where = where or weight_key
    module = weight_key[: -len(".weight")]
    if f"{module}.SCB" in tensors:
        data, scb = tensors[weight_key], tensors[f"{module}.SCB"]
        if data.dim() != 2 or scb.numel() != data.shape[0]:
            raise InvalidBaseModel("an 8-bit weight's SCB does not hold one scale per row", where, RESAVE)
        return PackedInt8(data, scb)
    state_key = next((k for k in tensors if k.startswith(f"{weight_key}.{STATE_PREFIX}")), None)
    if state_key is None:
        raise Unsupported("a packed weight has no quant_state", where, RESAVE)
    state = parse_state(bytes(tensors[state_key].numpy()), where)
    if not state_key.endswith(state["quant_type"]):
        raise InvalidBaseModel("a packed weight's quant_state names another 4-bit type than its key", where, RESAVE)
    n = math.prod(state["shape"])
    blocks = -(-n // state["blocksize"])
    # the packed weight in bytes (its storage dtype may be wider than uint8), the rest in values
    sizes = {weight_key: -(-n // 2), f"{weight_key}.absmax": blocks, f"{weight_key}.quant_map": 16}
    if "nested_blocksize" in state:
        sizes.update({f"{weight_key}.nested_absmax": -(-blocks // state["nested_blocksize"]),
                      f"{weight_key}.nested_quant_map": 256})
    for key, size in sizes.items():
        tensor = tensors.get(key)
        if tensor is None or (tensor.nbytes if key == weight_key else tensor.numel()) != size:
            raise InvalidBaseModel(f"{key} does not hold what the quant_state's shape and block size need",
                                   where, RESAVE)
    nested = None
    if "nested_blocksize" in state:
        nested = Nested(tensors[f"{weight_key}.nested_absmax"], tensors[f"{weight_key}.nested_quant_map"],
                        float(state["nested_offset"]), state["nested_blocksize"])
    return Packed4bit(tensors[weight_key], tensors[f"{weight_key}.absmax"], state["quant_type"],
                      state["blocksize"], state["dtype"], tuple(state["shape"]),
                      tensors[f"{weight_key}.quant_map"], nested)
