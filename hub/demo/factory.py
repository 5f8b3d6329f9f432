"""Build tiny real base models (from transformers configs) and real PEFT LoRA
adapters for them, offline and deterministically.

Used by `hub demo`, the test suite and the benchmarks. Imports torch,
transformers and peft, so nothing on a CLI fast path may import this module.
"""

from __future__ import annotations

from pathlib import Path

import torch

# Small but structurally faithful: GQA on Llama, Conv1D on GPT-2, q/k/v biases on Qwen2.
BASE_CONFIGS = {
    "llama": dict(
        model_type="llama", hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, vocab_size=128, max_position_embeddings=128,
        tie_word_embeddings=False,
    ),
    "gpt2": dict(model_type="gpt2", n_embd=64, n_layer=2, n_head=4, vocab_size=128, n_positions=128,
                 bos_token_id=0, eos_token_id=0),
    "qwen2": dict(
        model_type="qwen2", hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, vocab_size=128, max_position_embeddings=128,
        tie_word_embeddings=True,
    ),
}

# The adapter kinds every suite runs against: name -> (base kind, LoraConfig kwargs).
ADAPTER_KINDS: dict[str, tuple[str, dict]] = {
    "plain": ("llama", dict(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"])),
    "rslora": ("llama", dict(r=8, lora_alpha=16, use_rslora=True, target_modules=["q_proj", "k_proj", "v_proj"])),
    "dora": ("llama", dict(r=4, lora_alpha=8, use_dora=True, target_modules=["q_proj", "o_proj"])),
    "patterns": ("llama", dict(
        r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"],
        rank_pattern={"v_proj": 4, "model.layers.1.self_attn.q_proj": 2}, alpha_pattern={"down_proj": 32},
    )),
    "modules_to_save": ("llama", dict(r=4, lora_alpha=8, target_modules=["q_proj"], modules_to_save=["lm_head"])),
    "embedding": ("llama", dict(r=4, lora_alpha=4, target_modules=["embed_tokens", "q_proj"])),
    "all_linear": ("llama", dict(r=4, lora_alpha=8, target_modules="all-linear")),
    "gpt2": ("gpt2", dict(r=4, lora_alpha=8, target_modules=["c_attn", "c_proj"], fan_in_fan_out=True)),
    "qwen2": ("qwen2", dict(r=8, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])),
}


def make_config(kind: str, **overrides):
    from transformers import AutoConfig

    spec = dict(BASE_CONFIGS[kind])
    spec.update(overrides)
    model_type = spec.pop("model_type")
    return AutoConfig.for_model(model_type, **spec)


def make_base(kind: str, out: str | Path, seed: int = 0, max_shard_size: str | None = None,
              dtype: torch.dtype = torch.float32, **overrides) -> Path:
    """Save a randomly initialised tiny model of ``kind`` as a safetensors folder."""
    from transformers import AutoModelForCausalLM

    out = Path(out)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(make_config(kind, **overrides), dtype=dtype)
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    model.save_pretrained(out, **kwargs)
    return out


def make_adapter(base_dir: str | Path, out: str | Path, seed: int = 0, base_name: str | None = None,
                 **lora_kwargs) -> Path:
    """Attach a LoRA with non-zero random weights to the base and save it with PEFT."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    out = Path(out)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    torch.manual_seed(seed)
    lora_kwargs.setdefault("init_lora_weights", False)
    lora_kwargs.setdefault("task_type", "CAUSAL_LM")
    peft_model = get_peft_model(model, LoraConfig(**lora_kwargs))
    if lora_kwargs.get("use_dora"):
        # PEFT initialises the magnitude to ||W + ΔW||; perturb it so the test sees it matter
        with torch.no_grad():
            for name, param in peft_model.named_parameters():
                if "lora_magnitude_vector" in name:
                    param.mul_(1 + 0.1 * torch.rand_like(param))
    if lora_kwargs.get("modules_to_save"):
        with torch.no_grad():
            for name, param in peft_model.named_parameters():
                if "modules_to_save" in name:
                    param.add_(0.05 * torch.randn_like(param))
    peft_model.save_pretrained(out)
    import json

    # PEFT writes target_modules from a set, in hash-seed order: sort it so the same seed gives
    # the same bytes (and sha256) in every process
    cfg_path = out / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    if isinstance(cfg.get("target_modules"), list):
        cfg["target_modules"] = sorted(cfg["target_modules"])
    if base_name is not None:
        cfg["base_model_name_or_path"] = base_name
    cfg_path.write_text(json.dumps(cfg, indent=2))
    return out


def make_kind(kind: str, root: str | Path, seed: int = 0) -> tuple[Path, Path]:
    """Build (base folder, adapter folder) for one of ADAPTER_KINDS under ``root``."""
    root = Path(root)
    base_kind, kwargs = ADAPTER_KINDS[kind]
    base = root / f"base-{base_kind}"
    if not (base / "config.json").exists():
        make_base(base_kind, base)
    adapter = make_adapter(base, root / f"adapter-{kind}", seed=seed, **kwargs)
    return base, adapter


def make_tuned(base_dir: str | Path, out: str | Path, rank: int = 4, noise: float = 1e-3, seed: int = 0,
               embedding_rows: int = 1, norms: bool = False) -> Path:
    """A "fully fine-tuned" copy of a base: every 2-D Linear/Conv1D weight (lm_head too) gets a known
    rank-``rank`` delta (distinct singular values) plus full-rank Gaussian noise of relative
    size ``noise``; ``embedding_rows`` rows of the input embedding change; ``norms`` also
    moves every norm weight. For `hub extract` tests and benchmarks."""
    from transformers import AutoModelForCausalLM

    out = Path(out)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    g = torch.Generator().manual_seed(seed)
    embed = model.get_input_embeddings()
    with torch.no_grad():
        for name, module in model.named_modules():
            weight = getattr(module, "weight", None)
            if weight is None or module is embed:
                continue
            if weight.dim() == 2:
                m, n = weight.shape
                scale = float(weight.norm()) / 4
                u = torch.linalg.qr(torch.randn(m, rank, generator=g)).Q
                v = torch.linalg.qr(torch.randn(n, rank, generator=g)).Q
                s = scale * torch.tensor([2.0 ** -i for i in range(rank)])
                weight.add_((u * s) @ v.T)
                weight.add_(torch.randn(m, n, generator=g) * (noise * float(weight.norm()) / (m * n) ** 0.5))
            elif weight.dim() == 1 and norms:
                weight.add_(0.01 * torch.randn(weight.shape, generator=g))
        rows = torch.randperm(embed.weight.shape[0], generator=g)[:embedding_rows]
        embed.weight[rows] += 0.5 * torch.randn(len(rows), embed.weight.shape[1], generator=g)
    model.save_pretrained(out)
    return out


def make_bnb_base(base_dir: str | Path, out: str | Path, method: str = "nf4", double_quant: bool = False,
                  dtype: torch.dtype = torch.float32) -> Path:
    """Load ``base_dir`` in transformers with a BitsAndBytesConfig (nf4 | fp4 | int8) and save the
    bitsandbytes checkpoint, as users get them. Needs bitsandbytes (runs on CPU)."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    if method == "int8":
        config = BitsAndBytesConfig(load_in_8bit=True)
    else:
        config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=method, bnb_4bit_compute_dtype=dtype,
                                    bnb_4bit_use_double_quant=double_quant)
    model = AutoModelForCausalLM.from_pretrained(base_dir, quantization_config=config, dtype=dtype,
                                                 device_map="cpu")
    model.save_pretrained(out)
    return Path(out)
