"""Generate PEFT LoRA adapter folders of realistic shapes and sizes, fast.

Each folder holds what ``PeftModel.save_pretrained`` writes: ``adapter_config.json``
(the exact key set peft 0.21 saves) and ``adapter_model.safetensors`` with PEFT's key
names (``base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight``) and shapes
of real Llama-family bases. Tensor values are finite normal numbers taken from a shared
random pool at a random offset, with a fresh random head per file, so every adapter
has distinct content (no dedup) without paying for 10 GB of fresh random numbers.

Writing the safetensors bytes directly (header + data) keeps generation I/O-bound;
safetensors.torch.load_file and hub both read the files (the benchmark checks it).
"""

from __future__ import annotations

import json
import math
import os
import random
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# (hidden, intermediate, layers, kv_dim): from each model's config.json
BASES = {
    "Qwen/Qwen2.5-0.5B": (896, 4864, 24, 128),
    "Qwen/Qwen2.5-1.5B": (1536, 8960, 28, 256),
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0": (2048, 5632, 22, 256),
    "meta-llama/Llama-3.2-1B": (2048, 8192, 16, 512),
    "meta-llama/Llama-3.2-3B": (3072, 8192, 28, 1024),
    "meta-llama/Llama-2-7b-hf": (4096, 11008, 32, 4096),
    "meta-llama/Meta-Llama-3-8B": (4096, 14336, 32, 1024),
    "mistralai/Mistral-7B-v0.1": (4096, 14336, 32, 1024),
}
TARGET_SETS = (
    ("q_proj", "v_proj"),
    ("q_proj", "k_proj", "v_proj", "o_proj"),
    ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
)
RANKS = (4, 8, 16, 32, 64, 128)
DTYPES = {"F32": 4, "BF16": 2, "F16": 2}
DTYPE_WEIGHTS = {"F32": 0.6, "BF16": 0.3, "F16": 0.1}

# What peft 0.21.2 writes for a LoraConfig (LoraConfig(...).save_pretrained)
CONFIG_TEMPLATE = {
    "alora_invocation_tokens": None, "alpha_pattern": {}, "arrow_config": None, "auto_mapping": None,
    "base_model_name_or_path": None, "bias": "none", "corda_config": None, "ensure_weight_tying": False,
    "eva_config": None, "exclude_modules": None, "fan_in_fan_out": False, "inference_mode": True,
    "init_lora_weights": True, "kasa_config": None, "layer_replication": None, "layers_pattern": None,
    "layers_to_transform": None, "loftq_config": {}, "lora_alpha": 16, "lora_bias": False,
    "lora_dropout": 0.05, "lora_ga_config": None, "megatron_config": None, "megatron_core": "megatron.core",
    "modules_to_save": None, "monteclora_config": None, "peft_type": "LORA", "peft_version": "0.21.2",
    "qalora_group_size": 16, "r": 8, "rank_pattern": {}, "revision": None, "target_modules": [],
    "target_parameters": None, "task_type": "CAUSAL_LM", "trainable_token_indices": None, "use_bdlora": None,
    "use_dora": False, "use_qalora": False, "use_rslora": False, "velora_config": None,
}


@dataclass(frozen=True)
class Spec:
    base: str
    targets: tuple[str, ...]
    r: int
    dtype: str
    use_rslora: bool = False
    use_dora: bool = False

    def modules(self) -> list[tuple[str, int, int]]:
        """(module path, in_features, out_features) for every adapted module."""
        hidden, inter, layers, kv = BASES[self.base]
        shapes = {
            "q_proj": ("self_attn", hidden, hidden), "k_proj": ("self_attn", hidden, kv),
            "v_proj": ("self_attn", hidden, kv), "o_proj": ("self_attn", hidden, hidden),
            "gate_proj": ("mlp", hidden, inter), "up_proj": ("mlp", hidden, inter),
            "down_proj": ("mlp", inter, hidden),
        }
        out = []
        for i in range(layers):
            for t in self.targets:
                block, fin, fout = shapes[t]
                out.append((f"model.layers.{i}.{block}.{t}", fin, fout))
        return out

    def nbytes(self) -> int:
        size = DTYPES[self.dtype]
        total = sum(self.r * (fin + fout) * size for _, fin, fout in self.modules())
        if self.use_dora:
            total += sum(fout * size for _, _, fout in self.modules())
        return total


def all_specs() -> list[Spec]:
    return [Spec(b, t, r, d) for b in BASES for t in TARGET_SETS for r in RANKS for d in DTYPES]


def draw_specs(count: int, min_mb: float, max_mb: float, seed: int = 0) -> list[Spec]:
    """Sizes log-uniform in [min_mb, max_mb] (many small, some large, as on real disks);
    for each size a random base/targets/rank/dtype whose weights are within 25% of it."""
    rng = random.Random(seed)
    specs = all_specs()
    lo, hi = min_mb * 1e6, max_mb * 1e6
    fitting = [s for s in specs if lo * 0.75 <= s.nbytes() <= hi * 1.25]
    if not fitting:
        raise SystemExit(f"no realistic adapter shape between {min_mb} and {max_mb} MB")
    out = []
    for _ in range(count):
        want = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        near = [s for s in fitting if want / 1.25 <= s.nbytes() <= want * 1.25] or \
            [min(fitting, key=lambda s: abs(math.log(s.nbytes() / want)))]
        dtype = rng.choices(list(DTYPE_WEIGHTS), weights=list(DTYPE_WEIGHTS.values()))[0]
        same_dtype = [s for s in near if s.dtype == dtype] or near
        spec = rng.choice(same_dtype)
        flags = rng.random()
        out.append(Spec(spec.base, spec.targets, spec.r, spec.dtype,
                        use_rslora=flags < 0.1, use_dora=0.1 <= flags < 0.15))
    return out


class Pool:
    """Finite normal values (std 0.02, like trained LoRA factors) in each dtype."""

    def __init__(self, nbytes: int = 64 << 20, seed: int = 0):
        rng = np.random.default_rng(seed)
        f32 = (rng.standard_normal(nbytes // 4, dtype=np.float32) * 0.02)
        self.rng = rng
        self.data = {
            "F32": f32.tobytes(),
            "BF16": (f32.view(np.uint32) >> 16).astype(np.uint16).tobytes(),
            "F16": f32.astype(np.float16).tobytes(),
        }

    def fill(self, dtype: str, nbytes: int, head: int = 4096) -> list:
        """Chunks totalling nbytes: a fresh random head (unique content), then pool slices."""
        src = self.data[dtype]
        item = DTYPES[dtype]
        fresh = min(head, nbytes) // item * item
        chunks = [memoryview(src)[0:0]]
        if fresh:
            start = int(self.rng.integers(0, (len(src) - fresh) // item)) * item
            shuffled = np.frombuffer(src[start:start + fresh], dtype=np.uint8).reshape(-1, item).copy()
            self.rng.shuffle(shuffled)
            chunks = [shuffled.tobytes()]
        left = nbytes - fresh
        while left:
            start = int(self.rng.integers(0, len(src) // item)) * item
            take = min(left, len(src) - start)
            chunks.append(memoryview(src)[start:start + take])
            left -= take
        return chunks


def write_adapter(folder: Path, spec: Spec, pool: Pool, alpha: int) -> int:
    """Write one adapter folder; returns the weights file size."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []  # (key, shape, nbytes)
    item = DTYPES[spec.dtype]
    for path, fin, fout in spec.modules():
        key = f"base_model.model.{path}"
        entries.append((f"{key}.lora_A.weight", [spec.r, fin], spec.r * fin * item))
        entries.append((f"{key}.lora_B.weight", [fout, spec.r], fout * spec.r * item))
        if spec.use_dora:
            entries.append((f"{key}.lora_magnitude_vector", [fout], fout * item))
    header, offset = {}, 0
    for key, shape, n in entries:
        header[key] = {"dtype": spec.dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    header["__metadata__"] = {"format": "pt"}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # safetensors pads the header to 8 bytes
    with open(folder / "adapter_model.safetensors", "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        for chunk in pool.fill(spec.dtype, offset):
            fh.write(chunk)
    config = dict(CONFIG_TEMPLATE, base_model_name_or_path=spec.base, r=spec.r, lora_alpha=alpha,
                  target_modules=sorted(spec.targets), use_rslora=spec.use_rslora, use_dora=spec.use_dora)
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return 8 + len(raw) + offset


def generate(root: Path, specs: list[Spec], seed: int = 0, pool: Pool | None = None) -> list[Path]:
    """Write one folder per spec under root (``adapter-00000``...); returns the folders."""
    pool = pool or Pool(seed=seed)
    rng = random.Random(seed)
    folders = []
    for i, spec in enumerate(specs):
        folder = root / f"adapter-{i:05d}"
        alpha = rng.choice((spec.r, 2 * spec.r, 16, 32))
        write_adapter(folder, spec, pool, alpha)
        folders.append(folder)
    return folders


def total_bytes(folders) -> int:
    return sum(os.path.getsize(f / n) for f in folders for n in ("adapter_config.json", "adapter_model.safetensors"))


def nearest_spec(mb: float, dtype: str = "F32") -> Spec:
    """The realistic shape whose weights come closest to ``mb`` megabytes."""
    return min((s for s in all_specs() if s.dtype == dtype), key=lambda s: abs(s.nbytes() - mb * 1e6))


def main() -> None:
    import argparse
    import sys
    import time

    ap = argparse.ArgumentParser(description="Write realistic PEFT LoRA adapter folders under OUT.")
    ap.add_argument("out", type=Path)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--min-mb", type=float, default=2.0)
    ap.add_argument("--max-mb", type=float, default=30.0)
    ap.add_argument("--fixed-mb", type=float, help="every adapter of the one shape nearest this size")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    t = time.perf_counter()
    if a.fixed_mb:
        specs = [nearest_spec(a.fixed_mb)] * a.count
    else:
        specs = draw_specs(a.count, a.min_mb, a.max_mb, a.seed)
    folders = generate(a.out, specs, seed=a.seed)
    print(f"generated {len(folders)} adapters, {total_bytes(folders) / 1e9:.2f} GB in "
          f"{time.perf_counter() - t:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
