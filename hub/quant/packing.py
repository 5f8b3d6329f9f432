"""One weight packed by a QuantScheme, and back.

``quantize(weight, scheme)`` and ``dequantize(packed)`` compose the backend's kernels
the way bitsandbytes' ``Params4bit`` / ``Int8Params`` do: 4-bit blocks with the absmax
optionally double-quantized (offset = mean, 8-bit dynamic code in blocks of 256), or
LLM.int8 rows. The result is the same, byte for byte, whichever backend ran.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hub.quant import backend
from hub.quant.kernels import NESTED_BLOCKSIZE, code_4bit, dynamic_code
from hub.quant.scheme import QuantScheme

TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
DTYPE_NAMES = {v: k for k, v in TORCH_DTYPES.items()}
# torch's thread count before hub.merge narrows it: the rounding of a parallel mean depends on it,
# and the double-quantization offset (a mean over every block's absmax) must round as in a PEFT process
DEFAULT_THREADS = torch.get_num_threads()


@dataclass
class Nested:
    """The double-quantized absmax: 8-bit codes (in Packed4bit.absmax), their own absmax, code and offset."""
    absmax: torch.Tensor          # fp32, one per 256 absmax values
    code: torch.Tensor            # fp32 (256,)
    offset: float
    blocksize: int = NESTED_BLOCKSIZE


@dataclass
class Packed4bit:
    data: torch.Tensor            # uint8 (ceil(n/2), 1), two codes per byte
    absmax: torch.Tensor          # fp32 per block, or uint8 codes when nested
    quant_type: str
    blocksize: int
    dtype: str                    # dequantized dtype
    shape: tuple[int, ...]
    code: torch.Tensor            # fp32 (16,)
    nested: Nested | None = None


@dataclass
class PackedInt8:
    data: torch.Tensor            # int8 (out, in)
    scb: torch.Tensor             # fp32 row absmax (out,)


def quantize(weight: torch.Tensor, scheme: QuantScheme, dtype: str | None = None):
    """Pack ``weight`` (quantized from its own dtype for 4-bit; bitsandbytes rounds to fp16 for int8).
    ``dtype`` is what the state records (default: the weight's dtype)."""
    if scheme.method == "int8":
        return PackedInt8(*backend.int8_quantize(weight))
    data, absmax = backend.quantize_4bit(weight, scheme.method, scheme.blocksize)
    recorded = dtype or DTYPE_NAMES[weight.dtype]
    packed = Packed4bit(data, absmax, scheme.method, scheme.blocksize, recorded, tuple(weight.shape),
                        code_4bit(scheme.method).clone())
    if scheme.double_quant:
        offset = _mean_as_by_default(absmax)
        codes, nested_absmax = backend.quantize_blockwise(absmax - offset, dynamic_code(), NESTED_BLOCKSIZE)
        packed.absmax = codes
        packed.nested = Nested(nested_absmax, dynamic_code().clone(), offset.item())
    return packed


def _mean_as_by_default(values: torch.Tensor) -> torch.Tensor:
    narrowed = torch.get_num_threads()
    if narrowed == DEFAULT_THREADS:
        return values.mean()
    torch.set_num_threads(DEFAULT_THREADS)
    try:
        return values.mean()
    finally:
        torch.set_num_threads(narrowed)


def absmax_of(packed: Packed4bit) -> torch.Tensor:
    """The fp32 per-block absmax, undoing double quantization as bitsandbytes does."""
    if packed.nested is None:
        return packed.absmax.float()
    n = packed.nested
    absmax = backend.dequantize_blockwise(packed.absmax, n.absmax, n.code, n.blocksize)
    return absmax + torch.tensor(n.offset, dtype=torch.float32)


def dequantize(packed, dtype: torch.dtype | None = None) -> torch.Tensor:
    """4-bit: in the recorded dtype (or ``dtype``: bitsandbytes' matmul dequantizes straight to the
    compute dtype); int8: fp32 (CB · SCB / 127), as PEFT's dequantize_bnb_weight."""
    if isinstance(packed, PackedInt8):
        return backend.int8_dequantize(packed.data, packed.scb)
    return backend.dequantize_4bit(packed.data, absmax_of(packed), packed.quant_type, packed.blocksize,
                                   packed.shape, dtype or TORCH_DTYPES[packed.dtype])


def roundtrip(weight: torch.Tensor, scheme: QuantScheme) -> torch.Tensor:
    """dequant(quant(W)) in W's dtype: the weight a QLoRA adapter was trained against."""
    return dequantize(quantize(weight, scheme)).to(weight.dtype)
