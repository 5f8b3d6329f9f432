"""Start-up of the reading commands on a 1,000-adapter registry.

1. Which heavy modules each command imports (a fresh interpreter reports sys.modules at
   exit): `hub --help`, `hub list`, `hub list --json`, `hub show NAME` must import neither
   torch nor transformers (nor peft).
2. Wall time of each command as a fresh process (median of --repeat runs), next to the
   floors: `python -c pass`, and the imports it must not pay for: click, SQLAlchemy,
   torch, peft + transformers. `hub list` runs twice per measurement setting:
     fast path   the SQL for the filter's shape was compiled by an earlier run (the usual case)
     first run   an empty SQL cache each time: SQLAlchemy is imported and the SQL compiled
   and, when the page cache can be dropped (root), once more with cold disk caches.
Goal: `hub list --json` on 1,000 adapters <= 0.5 s wall.

    python benchmarks/startup/bench_startup.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "list"))

import procs  # noqa: E402
from procs import bench_env, drop_caches, hub_command, load_average, measure  # noqa: E402
from synth_registry import build_registry  # noqa: E402

HEAVY = ("torch", "transformers", "peft", "sqlalchemy", "alembic", "numpy", "jsonschema", "huggingface_hub",
         "textual")
PROBE = """
import atexit, json, sys
atexit.register(lambda: print("\\nMODULES " + json.dumps(sorted({m.split('.')[0] for m in sys.modules})),
                              file=sys.stderr))
sys.argv = ["hub", *sys.argv[1:]]
from hub.cli import main
main()
"""


def imported(args: list[str], env: dict) -> list[str]:
    import subprocess

    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env)
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("MODULES "))
    return [m for m in json.loads(line[len("MODULES "):]) if m in HEAVY]


def median_wall(cmd: list[str], env: dict, repeat: int, fresh_cache: bool = False) -> tuple[float, float, float]:
    """(median wall s, median CPU s, peak RSS MB) over ``repeat`` fresh processes."""
    walls, cpus, rss = [], [], 0.0
    for _ in range(repeat):
        run_env = env
        if fresh_cache:
            run_env = {**env, "HUB_CACHE_DIR": tempfile.mkdtemp(prefix="hub-sql-")}
        wall, peak, _ = measure(cmd, env=run_env)
        if fresh_cache:
            shutil.rmtree(run_env["HUB_CACHE_DIR"], ignore_errors=True)
        walls.append(wall)
        cpus.append(procs.last_cpu_s[0])
        rss = max(rss, peak)
    return statistics.median(walls), statistics.median(cpus), rss


def row(label: str, wall: float, cpu: float, rss: float) -> str:
    return f"  {label:<70} {wall:7.3f} s  {cpu:6.2f} s  {rss:5.0f} MB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "hub-bench-startup")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    home = args.root / f"home-{args.count}"
    if not (home / "registry.db").exists():
        build_registry(home, args.count)
    env = bench_env(HUB_HOME=str(home), HUB_CACHE_DIR=str(args.root / "sql-cache"))
    hub = hub_command()
    name = json.loads(measure([*hub, "list", "--limit", "1", "--json"], env=env)[2])[0]["name"]
    commands = {
        "hub --help": ["--help"],
        "hub list": ["list"],
        "hub list --json": ["list", "--json"],
        "hub list --rank 8 --target q_proj --limit 50": ["list", "--rank", "8", "--target", "q_proj", "--limit", "50"],
        f"hub show {name}": ["show", name],
        "hub show --json": ["show", name, "--json"],
    }
    print(f"{args.count} adapters in {home}; {os.cpu_count()} CPUs, load average {load_average()}")
    results: dict = {"count": args.count, "imports": {}, "wall": {}}

    print("\nheavy modules imported (fast path: SQL already compiled for the shape)")
    for label, cmd in commands.items():
        for _ in range(2):  # the first run may compile SQL and fill the bytecode cache
            mods = imported(cmd, env)
        results["imports"][label] = mods
        bad = [m for m in mods if m in ("torch", "transformers", "peft")]
        print(f"  {label:<48} {'FAIL ' if bad else 'ok   '}{', '.join(mods) or '-'}")

    print(f"\nmedian of {args.repeat} fresh processes{'':<38} wall      CPU   peak RSS")
    floors = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "import click": [sys.executable, "-c", "import click"],
        "import sqlalchemy": [sys.executable, "-c", "import sqlalchemy"],
        "import torch": [sys.executable, "-c", "import torch"],
        "import peft, transformers": [sys.executable, "-c", "import peft, transformers"],
    }
    for label, cmd in floors.items():
        repeat = args.repeat if "torch" not in label and "peft" not in label else 3
        wall, cpu, rss = median_wall(cmd, env, repeat)
        results["wall"][label] = {"wall_s": wall, "cpu_s": cpu, "rss_mb": rss}
        print(row(label, wall, cpu, rss), flush=True)
    for label, cmd in commands.items():
        wall, cpu, rss = median_wall([*hub, *cmd], env, args.repeat)
        results["wall"][label] = {"wall_s": wall, "cpu_s": cpu, "rss_mb": rss}
        print(row(label, wall, cpu, rss), flush=True)
        if label.startswith("hub list"):
            wall, cpu, rss = median_wall([*hub, *cmd], env, max(3, args.repeat // 3), fresh_cache=True)
            results["wall"][label + " (first run)"] = {"wall_s": wall, "cpu_s": cpu, "rss_mb": rss}
            print(row(label + " (first run: compiles SQL)", wall, cpu, rss), flush=True)
    if drop_caches():
        wall, rss, _ = measure([*hub, "list", "--json"], env=env)
        results["wall"]["hub list --json (cold disk cache)"] = {"wall_s": wall, "cpu_s": procs.last_cpu_s[0],
                                                                 "rss_mb": rss}
        print(row("hub list --json (page cache dropped first)", wall, procs.last_cpu_s[0], rss))
    goal = results["wall"]["hub list --json"]["wall_s"]
    print(f"\n`hub list --json` on {args.count} adapters: {goal:.3f} s (goal <= 0.5 s); "
          f"load average at the end {load_average()}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
