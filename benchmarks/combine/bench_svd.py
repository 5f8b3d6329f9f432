"""hub combine --method svd against PEFT add_weighted_adapter(combination_type="svd").

Three synthetic adapters on Llama-7B-shaped modules (hidden 4096, 32 layers,
q/k/v/o_proj, all 4096 x 4096): ranks 16 / 16 / 32, one with rsLoRA, weights
0.6 / 0.3 / -0.25, combined to rank K = 32. In one run, on the same factors:

  hub-math   hub.combine.combine() on factors already in memory (QR + small SVD per module)
  hub-files  load the three adapter folders, combine, write the PEFT folder
  hub-math-np  the same on numpy arrays (hub's path for float16/32/64 parents: no torch import;
             float64 Gram matrices and eigh instead of QRs, hub.combine.lowrank.gram_svd)
  hub-cli    `hub combine ... --method svd --rank 32` as a subprocess against a fresh
             HUB_HOME (interpreter start, registry add included; float parents take the
             numpy path, so no torch import; bytecode cached as installed), median of
             --cli-repeats in wall and CPU seconds (GNU time; CPU holds when other processes
             share the cores), alternating with a bare `python -c "import torch"` (the floor
             the torch path pays) and, with --before CHECKOUT, that checkout's CLI
  peft       PeftModel + add_weighted_adapter(svd, svd_rank=32) on a Llama model with the
             same module shapes but only --peft-layers layers (default 1 = 4 modules): PEFT
             forms every 4096 x 4096 delta and runs a full SVD, ~a minute per module on two
             cores, so the 128-module figure is extrapolated per module (wall / modules x 128)

Accuracy: the exact result is the float64 dense truncated SVD of the dense float64
weighted sum, computed on --reference-modules modules of layer 0 (a 4096 x 4096 float64
SVD takes ~1.5 min here); relative error = ||BA - exact||_F / ||exact||_F, for hub and PEFT.
For all 128 modules hub's float32 result is also compared with hub in float64.

    python benchmarks/combine/bench_svd.py                  # the figures in docs/benchmarks.md
    python benchmarks/combine/bench_svd.py --layers 4 --peft-layers 1 --reference-modules 1 --skip-cli  # quick
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks" / "startup"))

from hub.combine import Parent, combine, load_factors  # noqa: E402
from hub.combine.factors import AdapterFactors, ModuleFactors  # noqa: E402

HIDDEN = 4096
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
SPECS = [  # name, r, alpha, rslora, weight
    ("style", 16, 32, False, 0.6),
    ("domain", 16, 16, True, 0.3),
    ("run3", 32, 64, False, -0.25),
]


def module_paths(layers: int) -> list[str]:
    return [f"model.layers.{i}.self_attn.{t}" for i in range(layers) for t in TARGETS]


def make_adapter(folder: Path, r: int, alpha: int, rslora: bool, layers: int, seed: int) -> None:
    """A PEFT LoRA folder with PEFT's key names and config keys; random factors of trained-adapter scale."""
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(seed)
    tensors = {}
    for path in module_paths(layers):
        tensors[f"base_model.model.{path}.lora_A.weight"] = torch.randn(r, HIDDEN, generator=g) / math.sqrt(HIDDEN)
        tensors[f"base_model.model.{path}.lora_B.weight"] = torch.randn(HIDDEN, r, generator=g) * 0.02
    folder.mkdir(parents=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": "llama-7b-shaped", "r": r,
        "lora_alpha": alpha, "use_rslora": rslora, "target_modules": list(TARGETS), "lora_dropout": 0.0,
        "bias": "none", "fan_in_fan_out": False, "use_dora": False, "rank_pattern": {}, "alpha_pattern": {},
        "init_lora_weights": True, "inference_mode": True, "modules_to_save": None,
    }
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2))


def subset(adapter: AdapterFactors, paths: list[str]) -> AdapterFactors:
    return AdapterFactors(adapter.name, adapter.info, {p: adapter.modules[p] for p in paths})


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dense_sum(parents: list[Parent], path: str) -> torch.Tensor:
    total = torch.zeros(HIDDEN, HIDDEN, dtype=torch.float64)
    for p in parents:
        m: ModuleFactors = p.factors.modules[path]
        total += (m.B.double() @ m.A.double()) * (m.scaling * p.weight)
    return total


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def run_peft(folders: dict[str, Path], layers: int, rank: int, tmp: Path) -> tuple[float, dict[str, torch.Tensor]]:
    """add_weighted_adapter(svd) on a Llama with the same module shapes and ``layers`` layers."""
    from peft import PeftModel
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(hidden_size=HIDDEN, num_attention_heads=32, num_key_value_heads=32, num_hidden_layers=layers,
                         intermediate_size=256, vocab_size=256, max_position_embeddings=64)
    model = LlamaForCausalLM(config)  # MLP and vocab shrunk: only q/k/v/o are adapted
    subsets = {}
    for name, folder in folders.items():
        # PEFT gets the same factors for the layers it runs
        src = load_factors(folder)
        sub = tmp / f"peft-{name}"
        from safetensors.torch import save_file
        tensors = {}
        for path in module_paths(layers):
            m = src.modules[path]
            tensors[f"base_model.model.{path}.lora_A.weight"] = m.A
            tensors[f"base_model.model.{path}.lora_B.weight"] = m.B
        sub.mkdir()
        save_file(tensors, str(sub / "adapter_model.safetensors"), metadata={"format": "pt"})
        shutil.copy(folder / "adapter_config.json", sub / "adapter_config.json")
        subsets[name] = sub
    names = list(subsets)
    pm = PeftModel.from_pretrained(model, subsets[names[0]], adapter_name=names[0])
    for n in names[1:]:
        pm.load_adapter(subsets[n], adapter_name=n)
    weights = [w for _, _, _, _, w in SPECS]
    start = time.perf_counter()
    with torch.no_grad():
        pm.add_weighted_adapter(names, weights, "mix", combination_type="svd", svd_rank=rank)
    wall = time.perf_counter() - start
    deltas = {}
    for path, module in pm.base_model.model.named_modules():
        if hasattr(module, "lora_A") and "mix" in getattr(module, "lora_A", {}):
            deltas[path] = (module.lora_B["mix"].weight.double() @ module.lora_A["mix"].weight.double()) \
                * module.scaling["mix"]
    return wall, deltas


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--rank", type=int, default=32)
    ap.add_argument("--peft-layers", type=int, default=1)
    ap.add_argument("--reference-modules", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5, help="runs of each hub timing (best and median printed)")
    ap.add_argument("--cli-repeats", type=int, default=3, help="runs of the CLI (median printed)")
    ap.add_argument("--skip-cli", action="store_true")
    ap.add_argument("--before", type=Path, metavar="CHECKOUT",
                    help="also run that checkout's `hub combine` (PYTHONPATH), alternating with this one's")
    ap.add_argument("--skip-peft", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cpus, "
          f"load average {os.getloadavg()[0]:.1f} (other processes share these cores)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-combine-"))
    results: dict = {"layers": args.layers, "modules": 4 * args.layers, "rank": args.rank}
    try:
        folders = {}
        for i, (name, r, alpha, rslora, _) in enumerate(SPECS):
            folders[name] = tmp / name
            make_adapter(folders[name], r, alpha, rslora, args.layers, seed=i)
        n_modules = 4 * args.layers
        print(f"{len(SPECS)} adapters, ranks {'/'.join(str(s[1]) for s in SPECS)}, {n_modules} modules "
              f"of {HIDDEN}x{HIDDEN}, target rank {args.rank}")

        # -- hub, factors in memory ------------------------------------------------------------
        parents = [Parent(load_factors(folders[n], name=n), w) for n, _, _, _, w in SPECS]
        combine(parents, "svd", {"rank": args.rank}, progress=None)  # warm-up (allocator, BLAS threads)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            ours = combine(parents, "svd", {"rank": args.rank})
            times.append(time.perf_counter() - start)
        hub_math, hub_math_median = min(times), statistics.median(times)
        # the same on numpy factors: what `hub combine` runs for float parents (no torch import)
        np_parents = [Parent(load_factors(folders[n], name=n, arrays="numpy"), w) for n, _, _, _, w in SPECS]
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            ours_np = combine(np_parents, "svd", {"rank": args.rank})
            times.append(time.perf_counter() - start)
        results.update(hub_math_numpy_s=min(times), numpy_min_energy=ours_np.min_energy)
        print(f"hub-math-np {min(times):7.2f} s  best of {args.repeats}, numpy arrays (the CLI's path for float parents)")
        # -- hub, folders to folder ------------------------------------------------------------
        times = []
        for i in range(args.repeats):
            start = time.perf_counter()
            fresh = [Parent(load_factors(folders[n], name=n), w) for n, _, _, _, w in SPECS]
            combine(fresh, "svd", {"rank": args.rank}).write(tmp / f"hub-out-{i}")
            times.append(time.perf_counter() - start)
            shutil.rmtree(tmp / f"hub-out-{i}")
        hub_files, hub_files_median = min(times), statistics.median(times)
        results.update(hub_math_s=hub_math, hub_math_median_s=hub_math_median, hub_files_s=hub_files,
                       hub_files_median_s=hub_files_median, hub_peak_rss_mb=peak_rss_mb(),
                       min_energy=ours.min_energy, max_truncation_error=ours.max_rel_error)
        print(f"hub-math   {hub_math:8.2f} s  best of {args.repeats} (median {hub_math_median:.2f} s), "
              f"{hub_math / n_modules * 1e3:.1f} ms/module")
        print(f"hub-files  {hub_files:8.2f} s  best of {args.repeats} (median {hub_files_median:.2f} s): load 3 "
              f"folders + combine + write;  peak RSS {peak_rss_mb():.0f} MB")

        # float32 vs float64 on every module (same algorithm: a consistency check, not the oracle)
        ours64 = combine(parents, "svd", {"rank": args.rank}, compute_dtype=torch.float64)
        worst64 = 0.0
        for m in ours.modules:
            ka, kb = (f"base_model.model.{m.path}.lora_{x}.weight" for x in "AB")
            a32 = ours.tensors[kb].double() @ ours.tensors[ka].double()
            a64 = ours64.tensors[kb].double() @ ours64.tensors[ka].double()
            worst64 = max(worst64, rel(a32, a64))
        results["hub_f32_vs_f64_max_rel"] = worst64
        print(f"hub float32 vs float64, all {n_modules} modules: max relative difference {worst64:.2e}")

        # -- hub, the CLI end to end -----------------------------------------------------------
        if not args.skip_cli:
            from procs import bench_env, hub_command, last_cpu_s, measure

            def run(cmd: list[str], env: dict) -> tuple[float, float]:
                """(wall, CPU seconds): the CPU figure holds when other processes share the cores."""
                return measure(cmd, env)[0], last_cpu_s[0]

            # bytecode cached as an installed wheel has it (this checkout sets PYTHONDONTWRITEBYTECODE)
            env = bench_env(HUB_HOME=str(tmp / "home"))
            env.pop("HUB_DATABASE_URL", None)
            for name, folder in folders.items():
                subprocess.run([*hub_command(), "add", str(folder), "--name", name], env=env, check=True,
                               stdout=subprocess.DEVNULL)
            parents_args = [f"{n}:{w}" for n, _, _, _, w in SPECS]
            runs: dict[str, list[tuple[float, float]]] = {"hub-cli": [], "torch": [], "before": []}
            for i in range(args.cli_repeats):   # alternating with the bare torch import: the same load for both
                runs["torch"].append(run([sys.executable, "-c", "import torch"], env))
                cmd = [*hub_command(), "combine", *parents_args, "--method", "svd", "--rank", str(args.rank),
                       "--name", f"mix-{i}"]
                runs["hub-cli"].append(run(cmd, env))
                if args.before:
                    runs["before"].append(run([*cmd[:-1], f"before-{i}"],
                                              {**env, "PYTHONPATH": str(args.before.resolve())}))
            medians = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
                       for k, v in runs.items() if v}
            (hub_cli, hub_cpu), (torch_import, torch_cpu) = medians["hub-cli"], medians["torch"]
            results.update(hub_cli_s=hub_cli, hub_cli_cpu_s=hub_cpu, hub_cli_runs_s=runs["hub-cli"],
                           torch_import_s=torch_import, torch_import_cpu_s=torch_cpu)

            def listed(k: str) -> str:
                return ", ".join(f"{w:.2f}" for w, _ in runs[k])

            print(f"hub-cli    {hub_cli:8.2f} s  median of {args.cli_repeats} ({listed('hub-cli')}), {hub_cpu:.2f} CPU s: "
                  f"`hub combine {' '.join(parents_args)} --method svd --rank {args.rank}` (registry add included)")
            print(f"torch      {torch_import:8.2f} s  median of `python -c 'import torch'` alone ({listed('torch')}), "
                  f"{torch_cpu:.2f} CPU s, alternating with hub-cli")
            if "before" in medians:
                before, before_cpu = medians["before"]
                results.update(before_cli_s=before, before_cli_cpu_s=before_cpu, before_cli_runs_s=runs["before"])
                print(f"before     {before:8.2f} s  median of {args.cli_repeats} ({listed('before')}), "
                      f"{before_cpu:.2f} CPU s: {args.before}'s `hub combine`, alternating; hub-cli is "
                      f"{before / hub_cli:.1f}x faster ({before_cpu / hub_cpu:.1f}x less CPU)")

        # -- PEFT ----------------------------------------------------------------------------------
        peft_deltas = {}
        if not args.skip_peft:
            peft_wall, peft_deltas = run_peft(folders, args.peft_layers, args.rank, tmp)
            per_module = peft_wall / (4 * args.peft_layers)
            peft_total = per_module * n_modules
            results.update(peft_modules_timed=4 * args.peft_layers, peft_wall_s=peft_wall,
                           peft_per_module_s=per_module, peft_extrapolated_s=peft_total,
                           speedup_math=peft_total / hub_math, speedup_files=peft_total / hub_files)
            print(f"peft       {peft_wall:8.2f} s for {4 * args.peft_layers} modules = {per_module:.1f} s/module "
                  f"-> {peft_total:.0f} s extrapolated to {n_modules} modules  peak RSS {peak_rss_mb():.0f} MB")
            print(f"speed-up   {peft_total / hub_math:.0f}x (hub-math), {peft_total / hub_files:.0f}x (hub-files)"
                  + (f", {peft_total / results['hub_cli_s']:.0f}x (hub-cli)" if "hub_cli_s" in results else ""))
            if "hub_cli_s" in results:
                results["speedup_cli"] = peft_total / results["hub_cli_s"]

        # -- accuracy against the float64 dense truncated SVD ---------------------------------------
        errs_hub, errs_np, errs_peft = [], [], []
        for path in module_paths(1)[: args.reference_modules]:
            start = time.perf_counter()
            U, S, Vh = torch.linalg.svd(dense_sum(parents, path), full_matrices=False)
            exact = (U[:, : args.rank] * S[: args.rank]) @ Vh[: args.rank]
            ref_s = time.perf_counter() - start
            ka, kb = (f"base_model.model.{path}.lora_{x}.weight" for x in "AB")
            errs_hub.append(rel(ours.tensors[kb].double() @ ours.tensors[ka].double(), exact))
            a_np, b_np = (torch.from_numpy(ours_np.tensors[k]).double() for k in (ka, kb))
            errs_np.append(rel(b_np @ a_np, exact))
            line = f"exact      {path}: hub rel. error {errs_hub[-1]:.2e} (torch), {errs_np[-1]:.2e} (numpy)"
            if path in peft_deltas:
                errs_peft.append(rel(peft_deltas[path], exact))
                line += f", peft rel. error {errs_peft[-1]:.2e}"
            print(line + f"  (float64 dense SVD took {ref_s:.0f} s)")
        results.update(hub_max_rel_error=max(errs_hub, default=None), hub_np_max_rel_error=max(errs_np, default=None),
                       peft_max_rel_error=max(errs_peft, default=None), reference_modules=args.reference_modules)
        print(f"load average at the end {os.getloadavg()[0]:.1f}")
        print(f"retained energy >= {ours.min_energy:.4f} (rank-{args.rank} truncation error of the sum "
              f"<= {ours.max_rel_error:.3f}, the same for any exact method)")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
