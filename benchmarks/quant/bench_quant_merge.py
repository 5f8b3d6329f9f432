"""Quantized merges: `hub merge --requantize` into a bitsandbytes NF4 checkpoint against PEFT's
way (load the base in 4-bit with BitsAndBytesConfig, PeftModel, merge_and_unload, save_pretrained).

Base: the synthetic 1.1 B Llama of benchmarks/merge/bench_merge.py (TinyLlama-1.1B's shape, random
bf16 weights), and its NF4 checkpoint (double quantization, bf16 compute) saved once by transformers.
Adapter: the `attn` LoRA of bench_merge (r=16 on q/k/v/o, init_lora_weights=False).

Contenders, each in its own process under a fresh wrapper that reads its peak RSS
(bench_merge.measure):
- hub:        `hub merge --base NF4 ADAPTER --out OUT --requantize --json`;
- hub-qlora:  `hub merge --base BF16 ADAPTER --out OUT --as-quantized nf4 --double-quant --requantize --json`
              (the same job from the full-precision base);
- peft:       from_pretrained(BF16, BitsAndBytesConfig nf4) + PeftModel + merge_and_unload + save_pretrained
              (transformers cannot save a model loaded from a pre-quantized checkpoint, so PEFT starts
              from the full-precision base, as users do).
The packed bytes of hub's output and PEFT's are compared tensor by tensor.

Run:  python benchmarks/quant/bench_quant_merge.py [--repeat 1] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks" / "merge"))

from bench_merge import make_adapter, measure, synth_base, warm  # noqa: E402

PEFT_JOB = """
import sys, torch
from transformers import AutoModelForCausalLM, BitsAndBytesConfig
from peft import PeftModel
base, adapter, out = sys.argv[1:4]
config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                            bnb_4bit_compute_dtype=torch.bfloat16)
model = AutoModelForCausalLM.from_pretrained(base, quantization_config=config, dtype=torch.bfloat16, device_map="cpu")
PeftModel.from_pretrained(model, adapter).merge_and_unload().save_pretrained(out)
"""
HUB_JOB = "from hub.cli import main; main()"


def compare(ours: Path, ref: Path) -> dict:
    """Tensor by tensor (quant_state JSON parsed: hub pads it to a fixed length)."""
    import torch
    from safetensors import safe_open

    from hub.formats.bnb import STATE_PREFIX, parse_state

    def tensors(folder):
        out = {}
        for f in sorted(folder.glob("*.safetensors")):
            with safe_open(str(f), "pt") as fh:
                out.update({k: fh.get_tensor(k) for k in fh.keys()})
        return out

    a, b = tensors(ours), tensors(ref)
    same = sum(1 for k in set(a) & set(b)
               if (parse_state(bytes(a[k].numpy())) == parse_state(bytes(b[k].numpy())) if STATE_PREFIX in k
                   else a[k].dtype == b[k].dtype and torch.equal(a[k], b[k])))
    return {"tensors": len(set(a) | set(b)), "bit_identical": same}


def nf4_checkpoint(base: Path, out: Path) -> Path:
    if not (out / "config.json").is_file():
        import torch

        from hub.demo.factory import make_bnb_base

        make_bnb_base(base, out, "nf4", True, dtype=torch.bfloat16)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/hub-bench-merge"))
    args = parser.parse_args()
    work = args.work
    base = synth_base(work / "synth1b")
    adapter = make_adapter(base, work / "synth1b-attn", "attn")
    nf4 = nf4_checkpoint(base, work / "synth1b-nf4")
    env = dict(os.environ, HUB_HOME=str(work / "hub-home"), PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1",
               TRANSFORMERS_VERBOSITY="error")

    def hub(extra, src):
        return lambda out: [sys.executable, "-c", HUB_JOB, "merge", "--base", str(src), str(adapter), "--out",
                            str(out), "--name", f"bench-{os.getpid()}-{time.time_ns()}", "--json", *extra]

    contenders = {
        "hub": hub(["--requantize"], nf4),
        "hub-qlora": hub(["--as-quantized", "nf4", "--double-quant", "--requantize"], base),
        "peft": lambda out: [sys.executable, "-c", PEFT_JOB, str(base), str(adapter), str(out)],
    }
    results: dict[str, list[dict]] = {k: [] for k in contenders}
    outs = {}
    for _ in range(args.repeat):
        for name, cmd in contenders.items():
            out = work / f"out-quant-{name}"
            shutil.rmtree(out, ignore_errors=True)
            warm(nf4 if name == "hub" else base)
            results[name].append(measure(cmd(out), env=env))
            outs[name] = out
            print(name, results[name][-1], flush=True)
    check = {name: compare(outs[name], outs["peft"]) for name in ("hub", "hub-qlora")}
    med = {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in results.items()}
    print("| contender | wall s | engine s | peak RSS MB | time / PEFT | RSS / PEFT | tensors equal to PEFT's |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, row in med.items():
        same = check.get(name)
        eq = f"{same['bit_identical']}/{same['tensors']}" if same else "-"
        print(f"| {name} | {row['wall_s']:.1f} | {row.get('engine_s', float('nan')):.1f} | {row['peak_rss_mb']:.0f} "
              f"| {row['wall_s'] / med['peft']['wall_s']:.2f} | {row['peak_rss_mb'] / med['peft']['peak_rss_mb']:.2f} "
              f"| {eq} |")


if __name__ == "__main__":
    main()
