"""bitsandbytes as the oracle, with its own reference 4-bit dequantization on CPU.

bitsandbytes 0.50.2 loads a native CPU kernel for ``dequantize_4bit`` that (seen on an AVX-512 host) scales a
block running over a row's end with the wrong absmax (a (3, 64) tensor in blocks of 128 comes back
with twice the quantization error). Its CUDA kernel and its reference implementation
(``backends/default/ops.py``, "matches C++ / CUDA behavior") read blocks over the flat tensor, as the
quantizer writes them. Where the native kernel disagrees with that reference, the tests put the
reference in its place for the CPU, so that bitsandbytes, and PEFT and transformers through it, stay
the oracle on any host; ``tests/test_quant_backends.py`` checks hub against the native kernel in a
process of its own.

On hosts with AVX-512 BF16, bitsandbytes' ``Linear4bit`` in eval mode also repacks its weight for a fused
CPU kernel that computes in bf16 whatever ``bnb_4bit_compute_dtype`` says; the tests that compare
logits ask for fp32, so that shortcut is turned off, as it is on every other host.
"""

from __future__ import annotations

import warnings

import torch

OP = "bitsandbytes::dequantize_4bit"
PROBE = ((3, 64), 128)   # a block of 128 spans two rows of 64


def reference_dequantize_4bit(A, absmax, blocksize, quant_type, shape, dtype):
    from bitsandbytes.backends.default.ops import _dequantize_4bit_compute
    from bitsandbytes.backends.utils import _get_4bit_code

    compute = getattr(_dequantize_4bit_compute, "__wrapped__", _dequantize_4bit_compute)  # eager, not compiled
    if A.dtype != torch.uint8:
        A = A.view(torch.uint8)
    return compute(A.reshape(-1), absmax, _get_4bit_code(quant_type, A.device), blocksize, shape, dtype)


def native_disagrees() -> bool:
    import bitsandbytes.functional as F

    shape, blocksize = PROBE
    weight = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    packed, state = F.quantize_4bit(weight, blocksize=blocksize, quant_type="nf4")
    reference = reference_dequantize_4bit(packed, state.absmax, blocksize, "nf4", shape, torch.float32)
    return not torch.equal(F.dequantize_4bit(packed, state), reference)


def pin_reference() -> list[str]:
    """Use the reference kernel on CPU where the native one disagrees, and compute in the asked dtype
    where a bf16 shortcut would not; returns what was replaced on this host."""
    import bitsandbytes.nn.modules as modules

    replaced = []
    if native_disagrees():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")      # torch warns that a registered kernel is overridden: the point
            torch.library.register_kernel(OP, "cpu", reference_dequantize_4bit)
        assert not native_disagrees()
        replaced.append("dequantize_4bit on CPU")
    if modules.has_avx512bf16():
        modules.has_avx512bf16 = lambda: False   # read by each Linear4bit when it is built
        replaced.append("Linear4bit's bf16 CPU inference")
    return replaced
