"""A quantization scheme: what `BitsAndBytesConfig` and a checkpoint's quant_state say.

No torch import here: `hub base add` and `hub check` describe schemes on their fast path.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.errors import UsageError

METHODS = ("nf4", "fp4", "int8")
DTYPES = ("float32", "float16", "bfloat16")
BLOCKSIZES_4BIT = (32, 64, 128, 256, 512, 1024, 2048, 4096)


@dataclass(frozen=True)
class QuantScheme:
    method: str                   # nf4 | fp4 | int8
    blocksize: int | None = 64    # 4-bit only
    double_quant: bool = False    # 4-bit only: quantize the absmax too
    dtype: str | None = "float32"  # quantized from / dequantized to (None: the base's own, set when planning)
    compute_dtype: str | None = None

    def __post_init__(self):
        if self.method not in METHODS:
            raise UsageError(f"unknown quantization {self.method!r}", None, f"use one of {', '.join(METHODS)}")
        if self.bits == 4 and self.blocksize not in BLOCKSIZES_4BIT:
            raise UsageError(f"block size {self.blocksize} is not one bitsandbytes supports", "--blocksize",
                             f"use one of {', '.join(map(str, BLOCKSIZES_4BIT))}")
        if self.dtype is not None and self.dtype not in DTYPES:
            raise UsageError(f"cannot quantize from {self.dtype}", "--load-dtype", "use bf16, fp16 or fp32")

    @property
    def bits(self) -> int:
        return 8 if self.method == "int8" else 4

    @property
    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)

    def to_dict(self) -> dict:
        d = {"method": self.method, "bits": self.bits, "dtype": self.dtype, "compute_dtype": self.compute_dtype}
        if self.bits == 4:
            d.update(blocksize=self.blocksize, double_quant=self.double_quant)
        return d


@dataclass(frozen=True)
class QuantOptions:
    """A quantized merge's options (`hub merge --as-quantized/--requantize`; hub.merge.quantized
    carries them out)."""
    as_quantized: QuantScheme | None = None   # QLoRA-faithful merge into a full-precision base
    requantize: bool = False                  # write a bitsandbytes checkpoint
    keep_unadapted: bool = False              # --as-quantized: copy unadapted weights as they are
