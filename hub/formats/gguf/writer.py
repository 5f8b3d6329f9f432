"""Write a PEFT LoRA adapter as a llama.cpp GGUF LoRA file, one tensor at a time.

Tensor infos are declared first from the safetensors header (shapes and output types are
known without reading data), then each pair is read, folded, permuted, converted and
written before the next is read: peak memory is one module's factors, not the adapter.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hub.errors import InvalidAdapter, Unsupported
from hub.formats.gguf import convert, layout
from hub.formats.gguf.layout import OUTTYPES

WEIGHTS = "adapter_model.safetensors"
_PREFIX = "base_model.model."


@dataclass(frozen=True)
class Pair:
    module: str               # base module path
    tensor: str               # GGUF weight name (blk.N.attn_q.weight)
    a_key: str
    b_key: str
    embedding: bool
    r: int
    scaling: float
    a_shape: tuple[int, ...]  # as written (numpy order)
    b_shape: tuple[int, ...]


def _qtype(name: str):
    import gguf

    return {"f32": gguf.GGMLQuantizationType.F32, "f16": gguf.GGMLQuantizationType.F16,
            "bf16": gguf.GGMLQuantizationType.BF16, "q8_0": gguf.GGMLQuantizationType.Q8_0}[name]


def tensor_type(shape: tuple[int, ...], outtype: str):
    """The GGML type one tensor gets: q8_0 needs rows that are whole 32-value blocks, otherwise
    F16, as in llama.cpp's converter (QuantError -> 'falling back to F16')."""
    import gguf

    qtype = _qtype(outtype)
    if qtype == gguf.GGMLQuantizationType.Q8_0:
        block = gguf.GGML_QUANT_SIZES[qtype][0]
        if shape[-1] % block:
            return gguf.GGMLQuantizationType.F16
    return qtype


def plan_pairs(adapter_dir: Path, adapter, family: layout.Family) -> list[Pair]:
    """Every module's pair, from the safetensors header and the adapter's module table."""
    from safetensors import safe_open

    pairs = []
    with safe_open(str(adapter_dir / WEIGHTS), framework="pt") as f:
        keys = set(f.keys())
        for module in sorted(adapter.modules, key=_order):
            m = adapter.modules[module]
            embedding = m.kind == "embedding"
            a_key, b_key = (f"{_PREFIX}{module}.lora_embedding_A", f"{_PREFIX}{module}.lora_embedding_B") \
                if embedding else (f"{_PREFIX}{module}.lora_A.weight", f"{_PREFIX}{module}.lora_B.weight")
            if a_key not in keys or b_key not in keys:
                raise InvalidAdapter(f"module {module} has no lora_A/lora_B pair in {WEIGHTS}", str(adapter_dir),
                                     "re-save the adapter with PEFT")
            a_shape = tuple(f.get_slice(a_key).get_shape())
            b_shape = tuple(f.get_slice(b_key).get_shape())
            if embedding:     # PEFT A is (r, vocab); llama.cpp wants it transposed (llm_build_inp_embd)
                a_shape = a_shape[::-1]
            tensor = layout.tensor_name(module, family)
            if tensor is None:   # the runtime rules refuse these first; kept as a last guard
                raise Unsupported(f"llama.cpp has no tensor for module {module}", str(adapter_dir),
                                  "merge the adapter with `hub merge` and convert the merged model")
            pairs.append(Pair(module, tensor, a_key, b_key, embedding, int(b_shape[1]), float(m.scaling),
                              a_shape, b_shape))
    return pairs


def _order(module: str):
    parts = module.split(".")
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def write_gguf(adapter_dir: Path, adapter, base, out: Path, *, outtype: str = "f32", name: str | None = None,
               progress=None) -> dict:
    """Write ``out`` (a path that does not exist yet). Returns a summary for the CLI."""
    import gguf
    import torch
    from safetensors import safe_open

    if outtype not in OUTTYPES:
        raise Unsupported(f"unknown --outtype {outtype!r}", None, f"use one of: {', '.join(OUTTYPES)}")
    arch, family = layout.family_of(base.config)
    if family is None:
        raise Unsupported(f"GGUF export does not cover {arch or 'this base'}", base.name,
                          "merge the adapter with `hub merge` and convert the merged model with llama.cpp")
    pairs = plan_pairs(adapter_dir, adapter, family)
    alpha = convert.file_alpha(adapter.lora_alpha)

    writer = gguf.GGUFWriter(path=None, arch=family.gguf_arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    if name:
        writer.add_name(name)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    types = []
    for p in pairs:
        for suffix, shape in ((".lora_a", p.a_shape), (".lora_b", p.b_shape)):
            qtype = tensor_type(shape, outtype)
            nbytes = int(np.prod(gguf.quant_shape_to_byte_shape(shape, qtype)))
            writer.add_tensor_info(p.tensor + suffix, shape, np.dtype(np.float32), nbytes, raw_dtype=qtype)
            types.append(qtype)
    writer.write_header_to_file(path=out)
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    folded = {}
    with safe_open(str(adapter_dir / WEIGHTS), framework="pt") as f:
        it = iter(types)
        for i, p in enumerate(pairs):
            if progress:
                progress(i, len(pairs), p.module)
            a = f.get_tensor(p.a_key).to(torch.float32)
            b = f.get_tensor(p.b_key).to(torch.float32)
            if p.embedding:
                a = a.T
            factor = convert.fold_factor(p.scaling, p.r, alpha)
            if factor != 1.0:
                b = b * factor
                folded[p.module] = factor
            heads = layout.qk_heads(p.module, base.config, family)
            if heads:
                b = convert.permute_rows(b, heads)
            for t in (a, b):
                qtype = next(it)
                data = np.ascontiguousarray(t.numpy())
                writer.write_tensor_data(_encode(data, qtype))
    writer.close()
    if progress:
        progress(len(pairs), len(pairs), "")
    return {"architecture": family.gguf_arch, "alpha": alpha, "tensors": 2 * len(pairs), "outtype": outtype,
            "folded": folded, "f16_fallback": sum(1 for t in types if t != _qtype(outtype))}


def _encode(data: np.ndarray, qtype) -> np.ndarray:
    import gguf

    if qtype == gguf.GGMLQuantizationType.F32:
        return data.astype(np.float32, copy=False)
    if qtype == gguf.GGMLQuantizationType.F16:
        return data.astype(np.float16)
    return gguf.quants.quantize(data, qtype)
