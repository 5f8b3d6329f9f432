"""bitsandbytes' CPU quantization, written out in plain torch, bit for bit.

Each function reproduces what bitsandbytes 0.50 computes on CPU (tests compare
the bytes on random and real weights), so hub quantizes and dequantizes without
the library installed:

- 4-bit (``quantize_4bit``): per block of ``blocksize`` values, ``absmax``; values
  scaled by ``1/absmax`` (a multiplication by the reciprocal, clamped to [-1, 1]) go
  to the nearest of 16 code values (bucketize on the midpoints: a tie goes to the
  lower code); two codes per byte, high nibble first.
- 4-bit dequantization (bitsandbytes' C kernel): ``code[nibble] * absmax`` in fp32,
  then rounded to the recorded dtype.
- blockwise 8-bit (double quantization of the absmax, C kernel ``quantize_cpu``): the
  dynamic map; values times ``1/absmax`` are snapped to a 65536-point grid of [-1, 1]
  whose nearest codes are precomputed (so a value near a midpoint can take the farther
  code, exactly as the kernel does).
- LLM.int8 row-wise (``int8_vectorwise_quant``): from fp16, ``round(W · 127/rowmax)``;
  dequantized as ``CB · SCB · (1/127)``.
"""

from __future__ import annotations

from functools import lru_cache

import torch

NF4_CODE = (
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
)
# FP4 (1 sign, 2 exponent, 1 mantissa bit) in bit-pattern order, normalised by its largest value
FP4_RAW = (0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0, -0.0, -0.0625, -8.0, -12.0, -4.0, -6.0, -2.0, -3.0)
NESTED_BLOCKSIZE = 256            # bitsandbytes double-quantizes the absmax in blocks of 256
INT8_SCALE = 7.874015718698502e-3  # 1/127 as bitsandbytes writes it


@lru_cache(maxsize=None)
def code_4bit(quant_type: str) -> torch.Tensor:
    if quant_type == "nf4":
        return torch.tensor(NF4_CODE, dtype=torch.float32)
    if quant_type == "fp4":
        data = torch.tensor(FP4_RAW, dtype=torch.float32)
        return data.div_(data.abs().max())
    raise ValueError(f"unknown 4-bit type {quant_type!r}")


@lru_cache(maxsize=None)
def _bounds_4bit(quant_type: str) -> tuple[torch.Tensor, torch.Tensor]:
    code = code_4bit(quant_type)
    order = torch.argsort(code)
    return (code[order[:-1]] + code[order[1:]]) / 2, order


@lru_cache(maxsize=None)
def dynamic_code() -> torch.Tensor:
    """The signed 8-bit dynamic map (7 exponent bits) that double quantization uses."""
    values: list[float] = []
    exponent_bits, non_sign_bits = 7, 7
    for i in range(exponent_bits):
        items = int(2 ** (i + non_sign_bits - exponent_bits) + 1)
        bounds = torch.linspace(0.1, 1, items, dtype=torch.float32)
        means = (bounds[:-1] + bounds[1:]) / 2.0
        scale = 10 ** (-(exponent_bits - 1) + i)
        values += (scale * means).tolist()
        values += (-scale * means).tolist()
    values += [0, 1.0]
    values.sort()
    return torch.tensor(values, dtype=torch.float32)


def quantize_4bit(weight: torch.Tensor, quant_type: str, blocksize: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(packed uint8 of shape (ceil(n/2), 1), fp32 absmax per block)."""
    bounds, order = _bounds_4bit(quant_type)
    flat = weight.reshape(-1).float()
    n = flat.numel()
    rem = n % blocksize
    full = n - rem
    blocks = flat[:full].reshape(full // blocksize, blocksize)
    absmax = blocks.abs().max(dim=-1)[0]
    scaled = torch.clamp(blocks * (1.0 / absmax.clamp(min=1e-38).view(-1, 1)), -1, 1).reshape(-1)
    if rem:
        tail_max = flat[full:].abs().max().clamp(min=1e-38)
        absmax = torch.cat([absmax, tail_max.unsqueeze(0)])
        scaled = torch.cat([scaled, torch.clamp(flat[full:] / tail_max, -1, 1)])
    if scaled.numel() % 2:
        scaled = torch.nn.functional.pad(scaled, (0, 1))
    idx = torch.bucketize(scaled, bounds, out_int32=True)
    if quant_type != "nf4":
        idx = order[idx]
    nibbles = idx.to(torch.uint8)
    return ((nibbles[::2] << 4) | nibbles[1::2]).unsqueeze(1), absmax


def dequantize_4bit(packed: torch.Tensor, absmax: torch.Tensor, quant_type: str, blocksize: int,
                    shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    data = packed.reshape(-1).view(torch.uint8)
    n = 1
    for dim in shape:
        n *= dim
    nibbles = torch.stack([data >> 4, data & 0xF], dim=1).reshape(-1)[:n].long()
    # + 0.0 turns FP4's -0.0 (code 8) into +0.0, as bitsandbytes' CPU kernels write it: the same bytes
    values = (code_4bit(quant_type) + 0.0)[nibbles]
    return _scale_blocks(values, absmax.float(), blocksize).reshape(shape).to(dtype)


def _scale_blocks(values: torch.Tensor, absmax: torch.Tensor, blocksize: int) -> torch.Tensor:
    n = values.numel()
    rem = n % blocksize
    full = n - rem
    out = torch.empty(n, dtype=torch.float32)
    out[:full] = (values[:full].view(-1, blocksize) * absmax[: full // blocksize].view(-1, 1)).reshape(-1)
    if rem:
        out[full:] = values[full:] * absmax[full // blocksize]
    return out


LUT_SIZE = 65536


@lru_cache(maxsize=4)
def _lookup_table(code_key: tuple[float, ...]) -> torch.Tensor:
    """The CPU kernel's nearest-code table over 65536 evenly spaced points of [-1, 1]:
    for each point, how many code midpoints lie strictly below it."""
    code = torch.tensor(code_key, dtype=torch.float32)
    midpoints = 0.5 * (code[:-1] + code[1:])
    points = -1.0 + (2.0 * torch.arange(LUT_SIZE, dtype=torch.float32)) / (LUT_SIZE - 1)
    return torch.searchsorted(midpoints, points, right=False).to(torch.uint8)


def quantize_blockwise(values: torch.Tensor, code: torch.Tensor, blocksize: int) -> tuple[torch.Tensor, torch.Tensor]:
    """8-bit blockwise quantization of an fp32 vector: (uint8 codes, fp32 absmax per block).

    As the CPU kernel: each value times ``1/absmax`` goes to the nearest of 65536 grid
    points of [-1, 1], and the grid point's precomputed nearest code is taken."""
    flat = values.reshape(-1).float()
    n = flat.numel()
    nblocks = -(n // -blocksize)
    blocks = torch.nn.functional.pad(flat, (0, nblocks * blocksize - n)).view(nblocks, blocksize)
    absmax = blocks.abs().max(dim=-1)[0]
    inverse = torch.where(absmax == 0, 0.0, 1.0 / absmax)   # an all-zero block stores code 0
    scaled = torch.clamp(blocks * inverse.view(-1, 1), -1.0, 1.0)
    points = ((scaled + 1.0) * 0.5 * float(LUT_SIZE - 1) + 0.5).to(torch.int32)
    codes = _lookup_table(tuple(code.tolist()))[points.reshape(-1).long()].view(nblocks, blocksize)
    codes = torch.where((absmax == 0).view(-1, 1), torch.zeros_like(codes), codes)
    return codes.reshape(-1)[:n].reshape(values.shape), absmax


def dequantize_blockwise(codes: torch.Tensor, absmax: torch.Tensor, code: torch.Tensor, blocksize: int) -> torch.Tensor:
    return _scale_blocks(code[codes.reshape(-1).long()], absmax.float(), blocksize).reshape(codes.shape)


def int8_quantize(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """LLM.int8 row-wise: (int8 CB, fp32 SCB), from the weight rounded to fp16 as bitsandbytes does."""
    half = weight.contiguous().to(torch.float16)
    row_max = torch.max(half.abs(), dim=1).values.float()
    return torch.round(half * (127.0 / row_max.unsqueeze(-1))).to(torch.int8), row_max


def int8_dequantize(cb: torch.Tensor, scb: torch.Tensor) -> torch.Tensor:
    return cb * scb.view(-1, 1) * INT8_SCALE
