"""Streaming merge of LoRA adapters into base weights, tensor by tensor.

    plan = build_plan(base_dir, [(adapter_dir, 1.0), (other_info, -0.5)], dtype="keep", shard_size="5GB")
    result = execute(plan, out_dir, device="auto", progress=callback)

or in one call ``merge(base_dir, adapters, out_dir, ...)``. Pure domain code: no
click, textual, sqlalchemy or huggingface_hub here.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from hub.formats.base_model import BaseModelInfo, read_base_model
from hub.formats.bnb import refuse_gguf
from hub.merge.execute import DEFAULT_PREFETCH_BYTES, MergeResult, execute, fold, resolve_device
from hub.merge.plan import DEFAULT_SHARD_SIZE, MergeInput, MergePlan, build_full_plan, parse_size
from hub.merge.quantized import QuantOptions, build_quantized_plan
from hub.progress import Progress

log = logging.getLogger(__name__)

__all__ = [
    "MergeInput", "MergePlan", "MergeResult", "QuantOptions", "build_plan", "execute", "fold", "merge", "parse_size",
    "resolve_device", "DEFAULT_SHARD_SIZE",
]


def build_plan(base: str | os.PathLike | BaseModelInfo, adapters, *, dtype: str | None = "keep",
               shard_size: int | str = DEFAULT_SHARD_SIZE, quant: QuantOptions | None = None) -> MergePlan:
    """``adapters``: a list of (folder | AdapterInfo | MergeInput, weight) pairs or MergeInputs.
    ``quant`` (--as-quantized, --requantize): a bitsandbytes base is merged through
    hub.merge.quantized with or without it; other bases through hub.merge.plan."""
    if not isinstance(base, BaseModelInfo):
        refuse_gguf(Path(base))
        base = read_base_model(base)
    if base.quantization or quant is not None:
        log.debug("quantized merge plan (base quantization: %s, options: %s)", base.quantization, quant)
        plan = build_quantized_plan(base, adapters, dtype=dtype, shard_size=shard_size, options=quant)
    else:
        plan = build_full_plan(base, adapters, dtype=dtype, shard_size=shard_size)
    if log.isEnabledFor(logging.DEBUG):
        log.debug("merge plan: %d tensors (%d touched by adapters), %d shards, %d bytes to read, %d to write",
                  len(plan.tasks), len(plan.touched), len(plan.shards), plan.bytes_read, plan.bytes_written)
    return plan


def merge(base, adapters, out_dir: str | os.PathLike, *, device: str = "auto", dtype: str = "keep",
          shard_size: int | str = DEFAULT_SHARD_SIZE, progress: Progress | None = None, overwrite: bool = False,
          prefetch_bytes: int = DEFAULT_PREFETCH_BYTES, lineage_extra: dict | None = None,
          quant: QuantOptions | None = None) -> MergeResult:
    """Merge ``adapters`` ([(folder | AdapterInfo, weight), ...]) into ``base`` and write ``out_dir``.
    ``quant``: --as-quantized / --requantize (a bitsandbytes base is dequantized without it)."""
    plan = build_plan(base, adapters, dtype=dtype, shard_size=shard_size, quant=quant)
    return execute(plan, out_dir, device=device, progress=progress, overwrite=overwrite,
                   prefetch_bytes=prefetch_bytes, lineage_extra=lineage_extra)
