"""Read a llama.cpp GGUF LoRA file back into a PEFT adapter folder.

The inverse of writer.py: GGUF names -> module paths, q/k rows un-permuted, token_embd's
transposed lora_a turned back, and one alpha -> PEFT's lora_alpha with a rank_pattern, so
PEFT's alpha/r equals llama.cpp's per-pair scale. Works for files from hub and from
llama.cpp's convert_lora_to_gguf.py. The file is checked before anything is parsed.
"""

from __future__ import annotations

import json
import os
import stat
import struct
from collections import Counter
from pathlib import Path

import numpy as np

from hub.errors import Incompatible, InvalidAdapter, Unsupported
from hub.formats.gguf import convert, layout

MAGIC = b"GGUF"
MAX_COUNT = 1_000_000          # tensors / metadata keys a LoRA file could plausibly hold
_FIX = "export it again (hub export NAME FILE.gguf --format gguf, or convert_lora_to_gguf.py)"


def _refuse(what: str, path: Path, fix: str = _FIX):
    return InvalidAdapter(what, str(path), fix)


def open_checked(path: Path):
    """A GGUFReader over a regular file whose header is sane; one clear error otherwise."""
    from gguf import GGUFReader

    try:
        st = os.stat(path)
    except OSError as exc:
        raise InvalidAdapter(f"cannot read the file: {exc.strerror}", str(path), "check the path") from None
    if not stat.S_ISREG(st.st_mode):
        raise _refuse("not a regular file (a FIFO, device or folder)", path, "pass a .gguf file")
    with open(path, "rb") as fh:
        head = fh.read(24)
    if len(head) < 24 or head[:4] != MAGIC:
        raise _refuse("not a GGUF file (no GGUF magic)", path, "pass a .gguf LoRA adapter")
    version, n_tensors, n_kv = struct.unpack("<IQQ", head[4:])
    if version not in (2, 3) or n_tensors > MAX_COUNT or n_kv > MAX_COUNT:
        raise _refuse(f"GGUF header is implausible (version {version}, {n_tensors} tensors, {n_kv} keys)", path)
    try:
        reader = GGUFReader(path)
    except Exception as exc:  # noqa: BLE001 - gguf raises ValueError/IndexError/KeyError on damage
        raise _refuse(f"GGUF file is truncated or corrupt ({type(exc).__name__}: {exc})", path) from None
    for t in reader.tensors:
        if t.data_offset + t.n_bytes > st.st_size or t.data.nbytes != t.n_bytes:
            raise _refuse(f"GGUF file is truncated: tensor {t.name} ends past the end of the file", path)
    return reader


def field(reader, key: str, default=None):
    f = reader.get_field(key)
    if f is None:
        return default
    try:
        return f.contents()
    except Exception:  # noqa: BLE001 - a damaged value reads as missing
        return default


def read_lora(path: Path, base, dest: Path) -> dict:
    """Write a PEFT folder (adapter_config.json + adapter_model.safetensors) into ``dest``
    from the GGUF LoRA ``path`` for ``base`` (a BaseSpec). Returns what was found."""
    import torch
    from gguf import GGMLQuantizationType, quants
    from safetensors.torch import save_file

    reader = open_checked(path)
    kind = field(reader, "general.type")
    if kind != "adapter" or field(reader, "adapter.type") != "lora":
        raise _refuse(f"this GGUF is not a LoRA adapter (general.type = {kind or 'unset'}, adapter.type = "
                      f"{field(reader, 'adapter.type') or 'unset'})", path,
                      "hub imports GGUF LoRA adapters; register a model with `hub base add` instead")
    arch = field(reader, "general.architecture")
    hf_arch, family = layout.family_of(base.config)
    if family is None:
        raise Unsupported(f"GGUF import does not cover the base's architecture {hf_arch or '?'}", base.name,
                          f"use a base of a covered architecture ({', '.join(sorted(layout.ARCHITECTURES))})")
    if arch != family.gguf_arch:
        raise Incompatible(f"the adapter is for llama.cpp architecture {arch!r} but base {base.name} is "
                           f"{family.gguf_arch!r}", str(path), "pass the base it was made for with --base")
    alpha = float(field(reader, "adapter.lora.alpha", 0.0) or 0.0)
    tensors = {t.name: t for t in reader.tensors}
    fused = "Phi3" in (hf_arch or "")
    pairs: dict[str, dict] = {}
    for name in tensors:
        if name.endswith("_norm.weight"):      # llama.cpp ignores these too (mergekit layernorms)
            continue
        stem, dot, part = name.rpartition(".")
        module = layout.module_path(stem, fused=fused) if part in ("lora_a", "lora_b") else None
        if module is None or module not in base.modules:
            raise Incompatible(f"tensor {name} has no module in base {base.name}", str(path),
                               "pass the base this adapter was made for with --base")
        pairs.setdefault(module, {})[part] = tensors[name]
    if not pairs:
        raise _refuse("the GGUF adapter holds no lora_a/lora_b tensors", path)

    weights, ranks, dtypes = {}, {}, set()
    for module, pair in sorted(pairs.items()):
        if set(pair) != {"lora_a", "lora_b"}:
            raise _refuse(f"module {module} has only {', '.join(pair)}", path)
        a, b = (_dense(pair[p], quants, GGMLQuantizationType) for p in ("lora_a", "lora_b"))
        dtypes.update(pair[p].tensor_type.name for p in pair)
        embedding = layout.tensor_name(module) == f"{layout.EMBEDDING}.weight"
        if embedding:
            a = a.T
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
            raise _refuse(f"module {module} has factors of shapes {tuple(a.shape)} and {tuple(b.shape)}", path)
        heads = layout.qk_heads(module, base.config, family)
        if heads:
            b = convert.unpermute_rows(b, heads)
        r = int(b.shape[1])
        ranks[module] = r
        prefix = f"base_model.model.{module}"
        keys = (f"{prefix}.lora_embedding_A", f"{prefix}.lora_embedding_B") if embedding else \
            (f"{prefix}.lora_A.weight", f"{prefix}.lora_B.weight")
        weights[keys[0]], weights[keys[1]] = a.contiguous(), b.contiguous()

    save_dtype = {"F16": torch.float16, "BF16": torch.bfloat16}.get(next(iter(dtypes)), torch.float32) \
        if len(dtypes) == 1 else torch.float32
    weights = {k: v.to(save_dtype) for k, v in weights.items()}
    config = _peft_config(ranks, alpha, base)
    dest.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(dest / "adapter_model.safetensors"), metadata={"format": "pt"})
    (dest / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return {"architecture": arch, "alpha": alpha, "modules": len(ranks), "types": sorted(dtypes)}


def _dense(t, quants, types):
    import torch

    data = np.asarray(t.data)
    if t.tensor_type not in (types.F32, types.F16):
        data = quants.dequantize(data, t.tensor_type)
    return torch.from_numpy(np.array(data, dtype=np.float32))


def _peft_config(ranks: dict[str, int], alpha: float, base) -> dict:
    """A LoraConfig whose alpha/r per module is llama.cpp's scale for that pair."""
    r = Counter(ranks.values()).most_common(1)[0][0]
    rank_pattern = {m: k for m, k in ranks.items() if k != r}
    if alpha:
        lora_alpha, alpha_pattern = alpha, {}
    else:                       # llama.cpp: scale 1 when alpha is 0 -> alpha = r per module
        lora_alpha, alpha_pattern = float(r), {m: float(k) for m, k in rank_pattern.items()}
    suffixes = sorted({m.rsplit(".", 1)[-1] for m in ranks})
    covered = {p for p in base.modules if p.rsplit(".", 1)[-1] in suffixes}
    targets = suffixes if covered == set(ranks) else sorted(ranks)
    return {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": base.name,
        "r": r, "lora_alpha": lora_alpha, "rank_pattern": rank_pattern, "alpha_pattern": alpha_pattern,
        "target_modules": targets, "lora_dropout": 0.0, "bias": "none", "fan_in_fan_out": False,
        "use_rslora": False, "use_dora": False, "inference_mode": True, "init_lora_weights": True,
        "modules_to_save": None, "layers_to_transform": None, "layers_pattern": None,
    }
