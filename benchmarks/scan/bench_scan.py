"""`hub scan` of generated adapters, side by side with sha256sum and a PEFT load loop.

Contenders, each in its own process, on the same files, in one run:
  sha256sum   coreutils over every adapter file in one xargs pipeline (the floor: each byte read once)
  hashlib     Python's OpenSSL sha256 over the same files, 1 MiB reads (the floor for a Python tool)
  hub-link    `hub scan --link DIR` into a fresh HUB_HOME (index in place, no copy)
  hub-store   `hub scan DIR` into a fresh HUB_HOME (the default: copy into the store while hashing)
  peft        PeftConfig.from_pretrained + safetensors.torch.load_file per adapter

Caches: "cold" drops the page cache before each contender (needs root; falls back to
"warm" if that fails), "warm" reads every file once before each contender. Peak RSS
comes from os.wait4 on each contender's process (its largest descendant included).
A second part scans a set of small and a set of large adapters, to show that hub's
memory does not grow with adapter size while a tensor load does.

    python benchmarks/scan/bench_scan.py                    # 200 adapters, 2-30 MB
    python benchmarks/scan/bench_scan.py --count 1000       # the issue's figure
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "startup"))

import procs  # noqa: E402
from procs import bench_env, drop_caches, hub_command, load_average, measure  # noqa: E402

FILES = ("adapter_config.json", "adapter_model.safetensors")
HASHLIB = """
import hashlib, sys
buf = bytearray(1 << 20); view = memoryview(buf)
for path in open(sys.argv[1], 'rb').read().split(b'\\0'):
    if path:
        d = hashlib.sha256()
        with open(path, 'rb', buffering=0) as fh:
            while (n := fh.readinto(buf)): d.update(view[:n])
"""


@dataclass
class Run:
    contender: str
    cache: str
    wall_s: float
    cpu_s: float        # user + system, of the contender and its children
    peak_rss_mb: float
    extra: dict


def fmt_run(run: Run, floor: float | None, nbytes: int) -> str:
    ratio = f"{run.wall_s / floor:9.2f}x" if floor else f"{'-':>10}"
    notes = " ".join(f"{k}={v}" for k, v in run.extra.items())
    return (f"{run.contender:<10} {run.cache:<5} {run.wall_s:7.2f} s  {ratio}  {run.cpu_s:6.1f} s  "
            f"{run.peak_rss_mb:7.1f} MB  {nbytes / run.wall_s / 1e6:6.0f}  {notes}")


def generate(out: Path, *args: str) -> None:
    """Generate in a child process, so this process stays small (children inherit its
    peak RSS at fork, which would blur theirs)."""
    subprocess.run([sys.executable, str(HERE / "gen_adapters.py"), str(out), *args], check=True)


def prepare(root: Path, count: int, min_mb: float, max_mb: float, seed: int) -> tuple[Path, Path, int]:
    """Generate (or reuse) the adapters; returns (adapters dir, NUL-separated file list, bytes)."""
    adapters = root / "adapters"
    stamp = root / "adapters.json"
    want = {"count": count, "min_mb": min_mb, "max_mb": max_mb, "seed": seed}
    if not (stamp.exists() and json.loads(stamp.read_text()) == want):
        shutil.rmtree(adapters, ignore_errors=True)
        stamp.unlink(missing_ok=True)
        generate(adapters, "--count", str(count), "--min-mb", str(min_mb), "--max-mb", str(max_mb),
                 "--seed", str(seed))
        stamp.write_text(json.dumps(want))
    paths = [f / n for f in sorted(p for p in adapters.iterdir() if p.is_dir()) for n in FILES]
    file_list = root / "files.nul"
    file_list.write_bytes(b"".join(str(p).encode() + b"\0" for p in paths))
    return adapters, file_list, sum(p.stat().st_size for p in paths)


def run_contender(name: str, cache: str, root: Path, adapters: Path, file_list: Path, count: int) -> Run:
    cold = cache == "cold" and drop_caches()
    if not cold:
        subprocess.run(f"xargs -0 -a {file_list} cat > /dev/null", shell=True, check=True)
    extra: dict = {}
    if name == "sha256sum":
        wall, rss, _ = measure(["sh", "-c", f"xargs -0 -a {file_list} sha256sum > /dev/null"])
    elif name == "hashlib":
        wall, rss, _ = measure([sys.executable, "-c", HASHLIB, str(file_list)])
    elif name in ("hub-link", "hub-store"):
        home = root / f"home-{name}"
        shutil.rmtree(home, ignore_errors=True)
        link = ["--link"] if name == "hub-link" else []
        wall, rss, out = measure([*hub_command(), "scan", str(adapters), *link, "--json"],
                                 env=bench_env(HUB_HOME=str(home)))
        result = json.loads(out)
        if len(result["added"]) != count or result["failed"]:
            raise SystemExit(f"{name}: expected {count} added, got {len(result['added'])} "
                             f"(failed: {result['failed'][:3]})")
        if name == "hub-store":
            t = time.perf_counter()
            os.sync()  # the copy's writeback, outside the timed run; reported separately
            extra["then_sync_s"] = round(time.perf_counter() - t, 2)
        shutil.rmtree(home, ignore_errors=True)
    elif name == "peft":
        wall, rss, out = measure([sys.executable, str(HERE / "peft_load.py"), str(adapters)], env=bench_env())
        info = json.loads(out)
        if info["count"] != count:
            raise SystemExit(f"peft loaded {info['count']} adapters, expected {count}")
        extra.update(import_s=round(info["import_s"], 2), loop_s=round(info["loop_s"], 2))
    else:
        raise ValueError(name)
    return Run(name, "cold" if cold else "warm", wall, procs.last_cpu_s[0], rss, extra)


def flat_memory(root: Path, per_set: int) -> list[dict]:
    """Peak RSS of `hub scan --link` and of the PEFT loop on small vs large adapters."""
    rows = []
    for label, mb in (("small", 2), ("large", 250)):
        folder = root / f"flat-{label}"
        if not (folder / "done").exists():
            shutil.rmtree(folder, ignore_errors=True)
            generate(folder, "--count", str(per_set), "--fixed-mb", str(mb))
            (folder / "done").write_text("")
        size = sum(p.stat().st_size for p in folder.glob("*/adapter_model.safetensors")) / per_set
        home = root / f"home-flat-{label}"
        shutil.rmtree(home, ignore_errors=True)
        hub_wall, hub_rss, _ = measure([*hub_command(), "scan", "--link", str(folder)],
                                       env=bench_env(HUB_HOME=str(home)))
        shutil.rmtree(home, ignore_errors=True)
        peft_wall, peft_rss, _ = measure([sys.executable, str(HERE / "peft_load.py"), str(folder)], env=bench_env())
        rows.append({"set": label, "adapters": per_set, "adapter_mb": round(size / 1e6, 1),
                     "hub_rss_mb": hub_rss, "hub_s": hub_wall, "peft_rss_mb": peft_rss, "peft_s": peft_wall})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=200, help="adapters to generate (default 200; the issue: 1000)")
    ap.add_argument("--min-mb", type=float, default=2.0)
    ap.add_argument("--max-mb", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--root", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "hub-bench-scan",
                    help="work folder (adapters are kept and reused by runs with the same parameters)")
    ap.add_argument("--cache", choices=("cold", "warm", "both"), default="both")
    ap.add_argument("--contenders", default="sha256sum,hashlib,hub-link,hub-store,peft")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the contenders; the summary shows medians")
    ap.add_argument("--flat-count", type=int, default=8, help="adapters per set in the memory test (0: skip)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--clean", action="store_true", help="delete the work folder at the end")
    args = ap.parse_args()

    args.root.mkdir(parents=True, exist_ok=True)
    adapters, file_list, nbytes = prepare(args.root, args.count, args.min_mb, args.max_mb, args.seed)
    # one untimed scan, so that every timed hub run finds hub's bytecode compiled, as installed
    warmup = args.root / "home-warmup"
    measure([*hub_command(), "scan", "--link", str(adapters / "adapter-00000")], env=bench_env(HUB_HOME=str(warmup)))
    shutil.rmtree(warmup, ignore_errors=True)
    print(f"{args.count} adapters, {nbytes / 1e9:.2f} GB ({nbytes / args.count / 1e6:.1f} MB mean); "
          f"{os.cpu_count()} CPUs, load average {load_average()}", flush=True)
    header = f"{'contender':<10} {'cache':<5} {'wall':>9}  {'/sha256sum':>10}  {'CPU':>8}  {'peak RSS':>10}  {'MB/s':>6}"
    print(header + "  notes")
    caches = ("cold", "warm") if args.cache == "both" else (args.cache,)
    runs: list[Run] = []
    for _ in range(args.rounds):
        for cache in caches:
            floor = None
            for name in args.contenders.split(","):
                run = run_contender(name, cache, args.root, adapters, file_list, args.count)
                floor = run.wall_s if name == "sha256sum" else floor
                runs.append(run)
                print(fmt_run(run, floor, nbytes), flush=True)
    if args.rounds > 1:
        print(f"\nmedians of {args.rounds} rounds\n{header}")
        for cache in caches:
            medians = []
            for name in args.contenders.split(","):
                mine = [r for r in runs if r.contender == name and r.cache == cache]
                medians.append(Run(name, cache, statistics.median(r.wall_s for r in mine),
                                   statistics.median(r.cpu_s for r in mine), max(r.peak_rss_mb for r in mine), {}))
            floor = next((m.wall_s for m in medians if m.contender == "sha256sum"), None)
            for m in medians:
                print(fmt_run(m, floor, nbytes), flush=True)
    flat = flat_memory(args.root, args.flat_count) if args.flat_count else []
    for row in flat:
        print(f"memory, {row['set']:<5} adapters ({row['adapters']} x {row['adapter_mb']:6.1f} MB): "
              f"hub scan --link peak RSS {row['hub_rss_mb']:6.1f} MB ({row['hub_s']:.1f} s); "
              f"PEFT load peak RSS {row['peft_rss_mb']:7.1f} MB ({row['peft_s']:.1f} s)", flush=True)
    print(f"load average at the end: {load_average()}")
    if args.json:
        args.json.write_text(json.dumps({"count": args.count, "bytes": nbytes, "runs": [asdict(r) for r in runs],
                                         "flat": flat}, indent=2))
    if args.clean:
        shutil.rmtree(args.root, ignore_errors=True)


if __name__ == "__main__":
    main()
