"""Which implementation quantizes: bitsandbytes when it is installed, else hub's torch port.

``HUB_QUANT_BACKEND=torch`` forces the port (the tests run both and compare bytes);
``HUB_QUANT_BACKEND=bitsandbytes`` insists on the library. Every function here has the
same signature in both worlds, so callers never ask which one ran.
"""

from __future__ import annotations

import importlib.util
import logging
import os

import torch

from hub.errors import UsageError
from hub.quant import kernels

ENV = "HUB_QUANT_BACKEND"
CHOICES = ("auto", "torch", "bitsandbytes")


def name() -> str:
    """'bitsandbytes' or 'torch': the implementation the next call will use."""
    wanted = (os.environ.get(ENV) or "auto").strip().lower()
    if wanted not in CHOICES:
        raise UsageError(f"{ENV}={wanted!r} is not a quantization backend", ENV, f"use one of {', '.join(CHOICES)}")
    available = importlib.util.find_spec("bitsandbytes") is not None
    if wanted == "bitsandbytes" and not available:
        raise UsageError("bitsandbytes was asked for but is not installed", ENV,
                         "pip install 'lora-hub-registry[quant]', or unset it to use hub's own torch implementation")
    if wanted == "torch" or not available:
        return "torch"
    return "bitsandbytes"


def _bnb():
    if name() != "bitsandbytes":
        return None
    # On AVX-512 BF16 hosts bitsandbytes' import warns that an optional fused-matmul package is
    # missing; hub never calls that kernel, and the warning on stderr reads like hub's failure
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    import bitsandbytes.functional as functional

    return functional


def quantize_4bit(weight: torch.Tensor, quant_type: str, blocksize: int) -> tuple[torch.Tensor, torch.Tensor]:
    bnb = _bnb()
    if bnb is None:
        return kernels.quantize_4bit(weight, quant_type, blocksize)
    packed, state = bnb.quantize_4bit(weight, blocksize=blocksize, compress_statistics=False, quant_type=quant_type)
    return packed, state.absmax


def dequantize_4bit(packed: torch.Tensor, absmax: torch.Tensor, quant_type: str, blocksize: int,
                    shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    bnb = _bnb()
    if bnb is None or (packed.device.type == "cpu" and shape[-1] % blocksize):
        # bitsandbytes 0.50.2's native CPU kernel (seen on an AVX-512 host) scales a block
        # that runs over a row's end with the wrong absmax; its CUDA and reference kernels, and
        # hub's port (byte for byte the reference), read blocks over the flat tensor
        return kernels.dequantize_4bit(packed, absmax, quant_type, blocksize, shape, dtype)
    state = bnb.QuantState(absmax=absmax.float(), shape=torch.Size(shape), dtype=dtype, blocksize=blocksize,
                           quant_type=quant_type)
    return bnb.dequantize_4bit(packed, quant_state=state)


def quantize_blockwise(values: torch.Tensor, code: torch.Tensor, blocksize: int) -> tuple[torch.Tensor, torch.Tensor]:
    bnb = _bnb()
    if bnb is None:
        return kernels.quantize_blockwise(values, code, blocksize)
    q, state = bnb.quantize_blockwise(values, code=code.clone(), blocksize=blocksize)
    return q, state.absmax


def dequantize_blockwise(codes: torch.Tensor, absmax: torch.Tensor, code: torch.Tensor, blocksize: int) -> torch.Tensor:
    bnb = _bnb()
    if bnb is None:
        return kernels.dequantize_blockwise(codes, absmax, code, blocksize)
    return bnb.dequantize_blockwise(codes, absmax=absmax, code=code, blocksize=blocksize)


def int8_quantize(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    bnb = _bnb()
    if bnb is None:
        return kernels.int8_quantize(weight)
    cb, scb, _ = bnb.int8_vectorwise_quant(weight.contiguous().to(torch.float16))
    return cb, scb


def int8_dequantize(cb: torch.Tensor, scb: torch.Tensor) -> torch.Tensor:
    bnb = _bnb()
    if bnb is None:
        return kernels.int8_dequantize(cb, scb)
    return bnb.int8_vectorwise_dequant(cb, scb)
