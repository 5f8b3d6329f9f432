"""`hub extract` against mergekit's `mergekit-extract-lora` (mergekit 0.1.5) on the same
pair at equal rank: wall time, peak RSS and error side by side.

Pair (generated once into the work folder, not timed): a synthetic untied Llama, fp32 ("small":
hidden 512, 6 layers, GQA 8/2, vocab 8000, 25 M parameters; "medium": hidden 1024, 8 layers, vocab
16000, 123 M) and a "fine-tuned" copy from
hub.demo.factory.make_tuned: every 2-D weight + a known rank-8 delta + 1 % full-rank noise,
one changed embedding row.

Contenders, each a fresh process measured by GNU time (peak RSS of the process tree's
largest member):
- hub:      `hub extract --base B --tuned T --rank K` (registers the adapter, hashes both models)
- mergekit: `mergekit-extract-lora --model T --base-model B --out-path OUT --max-rank K --embed-lora`
            from its own venv (.bench/venv: `python3 -m venv .bench/venv`, then torch==2.13.0
            from the local CPU wheel, then mergekit==0.1.5).
Error: per module ||ΔW_lora − (W_tuned − W_base)||_F / ||W_tuned − W_base||_F, read back from
each output folder (hub.combine.load_factors resolves PEFT's scaling), the energy-weighted
total over all modules, and the optimum at rank K (full SVD) for reference.

Run:  .venv/bin/python benchmarks/extract/bench_extract.py [--rank 16] [--size small|medium] [--work DIR]
      [--mergekit .bench/venv/bin/mergekit-extract-lora]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks" / "startup"))

from procs import bench_env, hub_command, load_average, measure  # noqa: E402

SIZES = {   # untied synthetic Llamas: "small" keeps a run within a couple of minutes on a shared 2-core box
    "small": dict(hidden_size=512, intermediate_size=1408, num_hidden_layers=6, num_attention_heads=8,
                  num_key_value_heads=2, vocab_size=8000, max_position_embeddings=512, tie_word_embeddings=False),
    "medium": dict(hidden_size=1024, intermediate_size=2816, num_hidden_layers=8, num_attention_heads=16,
                   num_key_value_heads=4, vocab_size=16000, max_position_embeddings=512, tie_word_embeddings=False),
}


def make_pair(work: Path, size: str) -> tuple[Path, Path]:
    from hub.demo.factory import make_base, make_tuned

    base, tuned = work / f"base-{size}", work / f"tuned-{size}"
    if not (base / "config.json").exists():
        make_base("llama", base, seed=0, **SIZES[size])
    if not (tuned / "config.json").exists():
        make_tuned(base, tuned, rank=8, noise=1e-2, seed=1)
    return base, tuned


def errors(base: Path, tuned: Path, adapter: Path, rank: int) -> dict[str, float]:
    """Energy-weighted total and worst module error of ``adapter``, and the optimum's."""
    import torch

    from hub.combine import load_factors
    from hub.surgery.weights import ModelWeights

    factors = load_factors(adapter)
    num = den = opt = 0.0
    worst = 0.0
    with ModelWeights(base) as bw, ModelWeights(tuned) as tw:
        for path, mf in factors.modules.items():
            truth = (tw.get(f"{path}.weight", torch.float64) - bw.get(f"{path}.weight", torch.float64))
            got = mf.weight_delta(torch.float64)
            e2 = float((got - truth).pow(2).sum())
            t2 = float(truth.pow(2).sum())
            s = torch.linalg.svdvals(truth)
            opt += float(s[rank:].pow(2).sum())
            num, den = num + e2, den + t2
            worst = max(worst, math.sqrt(e2 / t2))
    return {"modules": len(factors.modules), "total": math.sqrt(num / den), "worst": worst,
            "optimum": math.sqrt(opt / den)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--size", choices=sorted(SIZES), default="small")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "hub-bench-extract")
    ap.add_argument("--mergekit", default=str(REPO / ".bench" / "venv" / "bin" / "mergekit-extract-lora"))
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    base, tuned = make_pair(args.work, args.size)
    out_mk, home = args.work / "out-mergekit", args.work / "hub-home"
    shutil.rmtree(out_mk, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)
    print(f"pair: {base} / {tuned}; rank {args.rank}; load {load_average()}")

    env = bench_env(HUB_HOME=str(home))
    hub_wall, hub_rss, _ = measure([*hub_command(), "extract", "--base", str(base), "--tuned", str(tuned),
                                    "--rank", str(args.rank), "--name", "bench"], env)
    out_hub = args.work / "out-hub"
    shutil.rmtree(out_hub, ignore_errors=True)
    measure([*hub_command(), "export", "bench", str(out_hub)], env)
    mk_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    mk_env.update(HF_HUB_OFFLINE="1")
    mk_wall, mk_rss, _ = measure([args.mergekit, "--model", str(tuned), "--base-model", str(base), "--out-path",
                                  str(out_mk), "--max-rank", str(args.rank), "--embed-lora", "--quiet"], mk_env)
    e_hub, e_mk = errors(base, tuned, out_hub, args.rank), errors(base, tuned, out_mk, args.rank)
    rows = [("hub extract", hub_wall, hub_rss, e_hub), ("mergekit-extract-lora", mk_wall, mk_rss, e_mk)]
    print(f"{'contender':<24}{'wall s':>8}{'peak MB':>9}{'modules':>9}{'total err':>12}{'worst':>10}{'optimum':>12}")
    for name, wall, rss, e in rows:
        print(f"{name:<24}{wall:>8.1f}{rss:>9.0f}{e['modules']:>9}{e['total']:>12.4e}{e['worst']:>10.4f}"
              f"{e['optimum']:>12.4e}")
    print(f"ratios hub/mergekit: time {hub_wall / mk_wall:.2f}x, peak memory {hub_rss / mk_rss:.2f}x, "
          f"error {e_hub['total'] / e_mk['total']:.3f}x")


if __name__ == "__main__":
    main()
