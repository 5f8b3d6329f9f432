"""Streaming merge of LoRA adapters into base weights, tensor by tensor.

    plan = build_plan(base_dir, [(adapter_dir, 1.0), (other_info, -0.5)], dtype="keep", shard_size="5GB")
    result = execute(plan, out_dir, device="auto", progress=callback)

or in one call ``merge(base_dir, adapters, out_dir, ...)``. Pure domain code: no
click, textual, sqlalchemy or huggingface_hub here.

Planning imports no torch (see hub.merge.torch_loader): the names that need it (execute,
fold, MergeResult) are loaded on first use, after torch's background import has ended.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from hub.formats.base_model import BaseModelInfo, read_base_model
from hub.formats.bnb import refuse_gguf
from hub.merge.plan import (DEFAULT_PREFETCH_BYTES, DEFAULT_SHARD_SIZE, MergeInput, MergePlan, build_full_plan,
                            parse_size)
from hub.merge.torch_loader import resolve_device
from hub.progress import Progress
from hub.quant.scheme import QuantOptions

if TYPE_CHECKING:
    from hub.merge.pipeline import MergeResult, execute, fold

log = logging.getLogger(__name__)

__all__ = [
    "MergeInput", "MergePlan", "MergeResult", "QuantOptions", "build_plan", "execute", "fold", "merge", "parse_size",
    "resolve_device", "DEFAULT_SHARD_SIZE", "DEFAULT_PREFETCH_BYTES",
]
_WITH_TORCH = ("MergeResult", "execute", "fold")


def __getattr__(name: str):
    if name in _WITH_TORCH:
        from hub.merge import torch_loader

        torch_loader.wait()
        from hub.merge import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_plan(base: str | os.PathLike | BaseModelInfo, adapters, *, dtype: str | None = "keep",
               shard_size: int | str = DEFAULT_SHARD_SIZE, quant: QuantOptions | None = None) -> MergePlan:
    """``adapters``: a list of (folder | AdapterInfo | MergeInput, weight) pairs or MergeInputs.
    ``quant`` (--as-quantized, --requantize): a bitsandbytes base is merged through
    hub.merge.quantized with or without it; other bases through hub.merge.plan."""
    if not isinstance(base, BaseModelInfo):
        refuse_gguf(Path(base))
        base = read_base_model(base)
    if base.quantization or quant is not None:
        from hub.merge import torch_loader

        torch_loader.wait()
        from hub.merge.quantized import build_quantized_plan   # imports torch

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
    run = __getattr__("execute")
    return run(plan, out_dir, device=device, progress=progress, overwrite=overwrite,
               prefetch_bytes=prefetch_bytes, lineage_extra=lineage_extra)
