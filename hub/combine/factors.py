"""Per-module LoRA factors of one adapter folder, with PEFT's scaling resolved.

Everything downstream works in *LoRA layout*: ``delta = B @ A * scaling`` with
A of shape (r, in) and B of shape (out, r), for Linear, Conv1D (fan_in_fan_out)
and Embedding alike. The base weight of a Conv1D or an Embedding is the
transpose of that; :meth:`ModuleFactors.weight_delta` gives that layout where a
method is defined elementwise on the weight (DARE masks, as PEFT draws them).

Per-module rank, alpha and scaling (rsLoRA, rank_pattern, alpha_pattern) come
from :func:`hub.inspect.inspect_adapter`, the one place that reads them.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from hub.combine.arrays import NUMPY_DTYPES, backend
from hub.errors import InvalidAdapter
from hub.formats.adapter_weights import PREFIX, WEIGHTS_NAME, split_keys
from hub.formats.safetensors_header import map_tensors
from hub.inspect import AdapterInfo, inspect_adapter, refuse_on_errors

if TYPE_CHECKING:
    import torch


@dataclass
class ModuleFactors:
    path: str
    A: torch.Tensor                    # (r, in_features)
    B: torch.Tensor                    # (out_features, r)
    scaling: float
    kind: str = "linear"               # linear | embedding
    fan_in_fan_out: bool = False
    bias: torch.Tensor | None = None   # lora_B bias (lora_bias=True); PEFT scales it with the product
    magnitude: torch.Tensor | None = None  # DoRA

    @property
    def r(self) -> int:
        return self.A.shape[0]

    @property
    def in_features(self) -> int:
        return self.A.shape[1]

    @property
    def out_features(self) -> int:
        return self.B.shape[0]

    @property
    def transposed(self) -> bool:
        """True when the base weight is the transpose of B @ A (Conv1D, Embedding)."""
        return self.fan_in_fan_out or self.kind == "embedding"

    def delta(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The dense delta in LoRA layout, (out, in), float32 by default. Only for small
        modules and tests (torch factors)."""
        import torch

        dtype = dtype or torch.float32
        return (self.B.to(dtype) @ self.A.to(dtype)) * self.scaling

    def weight_delta(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The dense delta in the base weight's layout (what PEFT's get_delta_weight returns)."""
        d = self.delta(dtype)
        return d.T if self.transposed else d


@dataclass
class AdapterFactors:
    name: str
    info: AdapterInfo
    modules: dict[str, ModuleFactors]
    # tensors that replace base parameters whole (modules_to_save, saved embedding layers),
    # by tensor key without the "base_model.model." prefix
    full_tensors: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return self.info.path

    @property
    def config(self) -> dict:
        return self.info.config


def load_factors(folder: str | os.PathLike, name: str | None = None, info: AdapterInfo | None = None,
                 dtype=None, arrays: str = "torch") -> AdapterFactors:
    """Read every LoRA factor of the adapter in ``folder`` as ``dtype`` (default float32),
    as torch tensors or, with ``arrays="numpy"``, numpy arrays (for float16/32/64 files:
    hub.combine.arrays.NUMPY_DTYPES)."""
    xp = backend(arrays)
    dtype = xp.float32 if dtype is None else dtype
    folder = Path(folder)
    info = info or inspect_adapter(folder)
    refuse_on_errors(info)
    weights = folder / WEIGHTS_NAME
    modules: dict[str, ModuleFactors] = {}
    full: dict[str, torch.Tensor] = {}
    with _open_tensors(weights, xp.name) as (keys, get_tensor):
        raw_modules, full_keys = split_keys(keys)
        for path, raw in sorted(raw_modules.items()):
            meta = info.modules.get(path)
            if meta is None:  # inspect refused it already; reaching here means an inconsistent file
                raise InvalidAdapter("module has LoRA tensors that inspection did not accept", f"{folder}: {path}",
                                     "run `hub show` on the adapter for its findings")
            t = raw.tensors
            modules[path] = ModuleFactors(
                path=path,
                A=xp.astype(get_tensor(t["A"]), dtype),
                B=xp.astype(get_tensor(t["B"]), dtype),
                scaling=meta.scaling,
                kind=meta.kind,
                fan_in_fan_out=info.fan_in_fan_out and meta.kind == "linear",
                bias=xp.astype(get_tensor(t["B_bias"]), dtype) if "B_bias" in t else None,
                # PEFT ignores a magnitude when use_dora is off (inspect warns), and so do we
                magnitude=xp.astype(get_tensor(t["magnitude"]), dtype) if "magnitude" in t and info.use_dora else None,
            )
        for key in full_keys.values():
            full[key[len(PREFIX):] if key.startswith(PREFIX) else key] = get_tensor(key)
    return AdapterFactors(name=name or folder.name, info=info, modules=modules, full_tensors=full)


@contextmanager
def _open_tensors(weights: Path, arrays: str) -> Iterator[tuple[list[str], Callable]]:
    """(tensor names, get_tensor) of the file: for numpy, read-only views on a memory map
    (hub.formats.safetensors_header.map_tensors: a factor is read once, into its stack);
    for torch, safetensors' reader."""
    if arrays == "numpy":
        header, views = map_tensors(weights)

        def get_tensor(name: str):
            if name not in views:
                raise InvalidAdapter(f"tensor {name} is {header.tensors[name].dtype}, which numpy does not hold",
                                     str(weights), "load the adapter with arrays='torch'")
            return views[name]

        yield list(header.tensors), get_tensor
        return
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as fh:
        yield list(fh.keys()), fh.get_tensor


def arrays_for(method, infos: list[AdapterInfo], dtype: str = "float32") -> str:
    """"numpy" where ``method`` (a hub.combine.declare.Method) takes numpy factors and numpy
    holds every parent tensor and the output exactly (no bf16, only plain LoRA factors),
    else "torch": the same result, without torch's import for the common case."""
    plain = all(i.dtype in NUMPY_DTYPES and not (i.saved_tensors or i.use_dora or i.lora_bias) for i in infos)
    return "numpy" if "numpy" in method.arrays and plain and dtype != "bfloat16" else "torch"
