"""Quantized merges, composed into the ordinary plan → execute pipeline.

Three things can be quantized, each tensor by tensor (memory stays near one tensor):

- the **source**: a bitsandbytes checkpoint's packed weight is read with its absmax,
  maps and quant_state, and dequantized exactly as bitsandbytes does (``PackedSource``);
- the **base value** (``--as-quantized``): a full-precision weight becomes
  dequant(quant(W in the load dtype)), the weight a QLoRA adapter was trained against
  (``RoundTrip``);
- the **output** (``--requantize``): the merged weight is packed again and written as a
  bitsandbytes checkpoint, as PEFT's merge_and_unload on a 4-bit/8-bit model leaves it
  (``Requantize``).

``build_quantized_plan`` builds the ordinary plan on the base's *logical* view (packed
weights shown with their real shape and recorded dtype) and then attaches these steps
to the tasks they concern. Deltas are added unfused there (``W + (B @ A)·s``), as PEFT's
bitsandbytes layers do. Every adapted weight gets a row in the drift report (``Drift``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

from hub.errors import Unsupported, UsageError
from hub.formats import bnb
from hub.formats.base_model import OUTPUT_HEADS, BaseModelInfo, BaseTensor, is_embedding_name
from hub.formats.safetensors_header import read_header
from hub.merge.plan import TensorTask, assign_shards, build_full_plan
from hub.quant import backend
from hub.quant.packing import DTYPE_NAMES, dequantize, quantize, roundtrip
from hub.quant.scheme import QuantOptions, QuantScheme

SAFETENSORS_DTYPES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}
DTYPE_FLAGS = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}


@dataclass(frozen=True)
class Part:
    key: str
    file: str
    begin: int          # absolute byte range in the file
    end: int
    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class PackedSource:
    """A packed base weight: its checkpoint tensors, dequantized on read."""
    key: str
    parts: tuple[Part, ...]

    def load(self, read) -> torch.Tensor:
        return dequantize(bnb.packed_from(self.key, {p.key: read(p) for p in self.parts},
                                          f"{self.parts[0].file}: {self.key}"))


@dataclass(frozen=True)
class RoundTrip:
    scheme: QuantScheme

    def __call__(self, weight: torch.Tensor) -> torch.Tensor:
        return roundtrip(weight.to(self.scheme.torch_dtype), self.scheme)


@dataclass(frozen=True)
class Requantize:
    """Pack the folded tensor (in its task's out dtype, which the quant_state records)."""
    scheme: QuantScheme

    def entries(self, task) -> list[tuple[str, str, tuple[int, ...]]]:
        if self.scheme.method == "int8":
            found = bnb.entries_int8(task.name, task.shape)
        else:
            found = bnb.entries_4bit(task.name, self.scheme, task.shape, _dtype_name(task.out_dtype))
        return [(e.key, e.dtype, e.shape) for e in found]

    def encode(self, name: str, tensor: torch.Tensor):
        packed = quantize(tensor, self.scheme)
        return bnb.tensors_of(name, packed), packed


def _dtype_name(safetensors_dtype: str) -> str:
    return {v: k for k, v in SAFETENSORS_DTYPES.items()}[safetensors_dtype]


# -- planning -------------------------------------------------------------------------------------

def build_quantized_plan(base: BaseModelInfo, adapters, *, dtype, shard_size, options: QuantOptions | None):
    options = options or QuantOptions()
    bnb.refuse_unsupported(base.quantization, base.path)
    packed: dict[str, PackedSource] = {}
    if base.quantization:
        if options.as_quantized is not None:
            raise UsageError("--as-quantized is for full-precision bases, and this base is already quantized",
                             base.path, "drop --as-quantized: hub dequantizes this checkpoint exactly as it is")
        view, packed, scheme = _logical_view(base)
        if dtype in (None, "keep") and not options.requantize:
            dtype = DTYPE_FLAGS[scheme.dtype]          # packed weights have no dtype to keep
        mode = "dequantize"
    else:
        view, scheme, mode = base, options.as_quantized, "as-quantized"
        if scheme is None:
            raise UsageError("--requantize needs a quantized base or --as-quantized", base.path,
                             "add --as-quantized nf4|fp4|int8, or merge into a bitsandbytes checkpoint")
        if scheme.dtype is None:   # the load dtype defaults to the base's own
            own = {v: k for k, v in SAFETENSORS_DTYPES.items()}.get(base.dtype, "float32")
            scheme = replace(scheme, dtype=own)
        if any(m.kind == "conv1d" for m in base.modules.values()):
            raise Unsupported("hub quantizes nn.Linear weights; this base's layers are Conv1D (GPT-2 style)",
                              base.path, "merge without --as-quantized")
    plan = build_full_plan(view, adapters, dtype=dtype, shard_size=shard_size)
    quantizable = packed.keys() if packed else _quantizable(base)
    tasks = []
    for task in plan.tasks:
        if task.source not in quantizable or task.replace is not None:
            tasks.append(task)
            continue
        adapted = bool(task.ops)
        if packed and options.requantize and not adapted:
            tasks += [_raw_copy(part) for part in packed[task.source].parts]   # PEFT leaves these bytes alone
            continue
        if packed:
            task.packed = packed[task.source]
            task.in_dtype = SAFETENSORS_DTYPES[scheme.dtype]
        elif adapted or not options.keep_unadapted or options.requantize:
            if adapted or not options.requantize:
                task.transform = RoundTrip(scheme)
                task.original = adapted
            else:   # quantized straight from the load dtype, as transformers does on load
                task.out_dtype = SAFETENSORS_DTYPES[scheme.dtype]
        if options.requantize:
            task.sink = Requantize(scheme)
            if adapted:
                task.out_dtype = "F32"   # PEFT packs the fp32 sum (dequantized base + fp32 delta)
        tasks.append(task)
    plan.tasks = tasks
    plan.shards = assign_shards(tasks, plan.shard_size)
    plan.quant = {"mode": mode, "scheme": scheme.to_dict(), "requantize": options.requantize,
                  "keep_unadapted": options.keep_unadapted, "backend": backend.name(),
                  "quantized_weights": sum(1 for t in tasks if t.quantized)}
    if options.requantize:
        plan.config_updates = {"quantization_config": base.quantization or bnb.quantization_config(scheme)}
    elif base.quantization:
        plan.config_updates = {"quantization_config": None}
    return plan


def _raw_copy(part: Part):
    return TensorTask(name=part.key, source=part.key, source_file=part.file, begin=part.begin, end=part.end,
                      shape=part.shape, in_dtype=part.dtype, out_dtype=part.dtype)


def _quantizable(base: BaseModelInfo) -> set[str]:
    """Weights transformers quantizes with BitsAndBytesConfig: nn.Linear weights but the output head."""
    return {f"{path}.weight" for path, m in base.modules.items()
            if m.kind == "linear" and not m.tied_to and path.rsplit(".", 1)[-1] not in OUTPUT_HEADS
            and not is_embedding_name(path) and f"{path}.weight" in base.tensors}


def _logical_view(base: BaseModelInfo) -> tuple[BaseModelInfo, dict[str, PackedSource], QuantScheme]:
    """The base as its dequantized self: packed weights with their real shape and recorded dtype,
    their auxiliary tensors hidden; plus how to read each packed weight, and the scheme."""
    from pathlib import Path

    headers = {shard: read_header(Path(base.path) / shard) for shard in base.shards}
    names = set(base.tensors)
    packed: dict[str, PackedSource] = {}
    for key, t in sorted(base.tensors.items()):
        four = any(f"{key}.{bnb.STATE_PREFIX}{kind}" in names for kind in ("nf4", "fp4"))
        eight = key.endswith(".weight") and t.dtype == "I8" and f"{key.removesuffix('.weight')}.SCB" in names
        if not (four or eight):
            continue
        parts = []
        for k in bnb.group_keys(key, names):
            bt = base.tensors[k]
            h = headers[bt.file]
            e = h.tensors[k]
            parts.append(Part(k, bt.file, h.data_start + e.begin, h.data_start + e.end, e.dtype, tuple(e.shape)))
        packed[key] = PackedSource(key, tuple(parts))
    if not packed:
        raise Unsupported("the config says bitsandbytes but no packed weight was found", base.path,
                          "re-save the model with transformers' save_pretrained")
    scheme = QuantScheme(**{k: v for k, v in base.quant_scheme.items() if k != "bits"})
    hidden = {p.key for src in packed.values() for p in src.parts if p.key != src.key}
    logical = SAFETENSORS_DTYPES.get(scheme.dtype, "F16")
    tensors = {}
    for key, t in base.tensors.items():
        if key in hidden:
            continue
        if key in packed:
            shape = t.logical_shape or t.shape
            tensors[key] = BaseTensor(key, tuple(shape), logical, t.file)
        else:
            tensors[key] = t
    floats = {t.dtype for t in tensors.values()}
    view = replace(base, tensors=tensors, quantization=None,
                   dtype=next(iter(floats)) if len(floats) == 1 else "mixed")
    return view, packed, scheme


# -- the drift report -----------------------------------------------------------------------------

@dataclass
class Drift:
    """Per adapted weight: what the adapter changes, what quantizing the base cost, and what
    requantizing the result loses of the adapter's change."""
    rows: list[dict] = field(default_factory=list)

    def measure(self, name: str, original: torch.Tensor | None, base: torch.Tensor, merged: torch.Tensor,
                requantized: torch.Tensor | None) -> None:
        w0 = base.float()
        merged = merged.float()
        delta = merged - w0
        delta_norm = float(torch.linalg.vector_norm(delta))
        row = {"module": name.removesuffix(".weight"),
               "adapter_change": _ratio(delta_norm, float(torch.linalg.vector_norm(w0))),
               "base_quant_error": None, "requant_error": None, "delta_kept": None}
        if original is not None:
            w = original.float()
            row["base_quant_error"] = _ratio(float(torch.linalg.vector_norm(w0 - w)), float(torch.linalg.vector_norm(w)))
        if requantized is not None:
            err = requantized.float() - merged
            row["requant_error"] = _ratio(float(torch.linalg.vector_norm(err)), delta_norm)
            kept = float(torch.sum((requantized.float() - w0) * delta)) / (delta_norm ** 2) if delta_norm else None
            row["delta_kept"] = kept
        self.rows.append(row)

    def summary(self) -> dict:
        def stats(key):
            vals = [r[key] for r in self.rows if r[key] is not None and math.isfinite(r[key])]
            if not vals:
                return None
            vals.sort()
            return {"mean": sum(vals) / len(vals), "median": vals[len(vals) // 2], "min": vals[0], "max": vals[-1]}

        return {"modules": len(self.rows),
                **{k: stats(k) for k in ("adapter_change", "base_quant_error", "requant_error", "delta_kept")}}

    def to_dict(self) -> dict:
        return {"summary": self.summary(), "modules": sorted(self.rows, key=lambda r: r["module"])}


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def measure_task(drift: Drift, task, original, base, merged, packed) -> None:
    requantized = dequantize(packed) if packed is not None else None
    drift.measure(task.name, original, base, merged, requantized)


__all__ = ["Drift", "PackedSource", "QuantOptions", "Requantize", "RoundTrip", "build_quantized_plan",
           "measure_task", "DTYPE_NAMES"]
