"""`hub export NAME FILE.gguf --format gguf` against llama.cpp's convert_lora_to_gguf.py
on the same adapter: wall time, CPU time and peak RSS of each as a fresh process, and
whether both files hold the same tensors.

    .venv/bin/python benchmarks/gguf/bench_gguf.py [--rank 64] [--rounds 3]

The adapter: all-linear LoRA on SmolLM2-135M (fp32 conversion, 30 layers x 7 modules),
rank --rank. The converter comes from the llama-cpp-python sdist (.gl/llama.cpp, made by
.ci/setup). hub is timed through its CLI on a registry holding the adapter and the base."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks" / "startup"))
sys.path.insert(0, str(REPO))

from procs import bench_env, hub_command, last_cpu_s, load_average, measure  # noqa: E402

CONVERTER = Path(os.environ.get("HUB_LLAMA_CPP_SRC", REPO / ".gl" / "llama.cpp")) / "convert_lora_to_gguf.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from hub.demo.factory import make_adapter
    from hub.demo.smollm import smollm_base

    base = smollm_base(dtype="float32")
    with tempfile.TemporaryDirectory(prefix="bench-gguf-") as tmp:
        tmp = Path(tmp)
        adapter = make_adapter(base, tmp / "adapter", seed=1, r=args.rank, lora_alpha=2 * args.rank,
                               target_modules="all-linear")
        size = (adapter / "adapter_model.safetensors").stat().st_size
        env = bench_env(HUB_HOME=str(tmp / "home"))
        hub = hub_command()
        for cmd in (["base", "add", str(base), "--name", "smollm"], ["add", str(adapter), "--name", "a"]):
            subprocess.run([*hub, *cmd], env=env, check=True, capture_output=True)
        contenders = {
            "hub export --format gguf": lambda out: [*hub, "export", "a", str(out), "--format", "gguf",
                                                     "--overwrite"],
            "convert_lora_to_gguf.py": lambda out: [sys.executable, str(CONVERTER), "--base", str(base),
                                                    "--outfile", str(out), "--outtype", "f32", str(adapter)],
        }
        results = {}
        for name, command in contenders.items():
            out = tmp / f"{name.split()[0]}.gguf"
            measure(command(out), env)                       # warm: page cache, bytecode
            runs = []
            for _ in range(args.rounds):
                wall, rss, _ = measure(command(out), env)
                runs.append((wall, last_cpu_s[0], rss))
            results[name] = (out, [statistics.median(x) for x in zip(*runs)])
        print(f"adapter: all-linear r={args.rank} on SmolLM2-135M, {size / 2**20:.1f} MiB safetensors; "
              f"median of {args.rounds}; load {load_average()}")
        print(f"{'contender':<28} {'wall s':>8} {'cpu s':>8} {'peak RSS MiB':>13}")
        for name, (_, (wall, cpu, rss)) in results.items():
            print(f"{name:<28} {wall:8.2f} {cpu:8.2f} {rss:13.0f}")
        (h_out, (hw, hc, hr)), (c_out, (cw, cc, cr)) = results.values()
        print(f"ratio hub/converter: wall {hw / cw:.2f}x, peak RSS {hr / cr:.2f}x")
        print(f"same tensors: {same_tensors(h_out, c_out)}")


def same_tensors(a: Path, b: Path) -> bool:
    import numpy as np
    from gguf import GGUFReader

    ta = {t.name: np.array(t.data) for t in GGUFReader(a).tensors}
    tb = {t.name: np.array(t.data) for t in GGUFReader(b).tensors}
    return ta.keys() == tb.keys() and all(np.array_equal(ta[k], tb[k]) for k in ta)


if __name__ == "__main__":
    main()
