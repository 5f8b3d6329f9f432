"""Start-up of the reading commands on a 1,000-adapter registry, as ratios to `hub list --json`.

1. Which heavy modules each command imports (a fresh interpreter reports sys.modules at
   exit): no reading command may import torch, transformers or peft; on the fast path
   (SQL compiled by an earlier run) neither SQLAlchemy, alembic, huggingface_hub, jsonschema.
2. Wall time of each reading command as a fresh process, median of --repeat rounds; in each
   round every command runs once, `hub list --json` first, so load drifts hit all alike.
   Printed as the ratio to `hub list --json`'s median (goal: <= 1.5x), next to the floors
   `python -c pass`, `import click`, `import sqlalchemy`, and the first run of a command
   (an empty SQL cache: SQLAlchemy is imported and the SQL compiled).
3. Commands that import torch: time from start to their first line on a terminal's stderr
   (a pseudo-terminal; goal: <= 0.3 s), median of 3, and torch's own import time.

The registry: benchmarks/list/synth_registry.py's 1,000 adapters plus synth_extras.py's
base with stored verdicts, merged models, versions, an alias and remotes.

    python benchmarks/startup/bench_startup.py [--repeat 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "list"))

from procs import bench_env, hub_command, load_average, measure  # noqa: E402
from synth_extras import BASE, add_extras  # noqa: E402
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


def first_line_s(cmd: list[str], env: dict) -> float:
    """Seconds from start until ``cmd`` writes its first line to a terminal's stderr (a
    pseudo-terminal); the process is then stopped (what follows is not measured here)."""
    import pty
    import select
    import signal
    import subprocess

    leader, follower = pty.openpty()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=follower,
                            start_new_session=True)
    os.close(follower)
    seen = b""
    try:
        while b"\n" not in seen:   # a command that prints nothing: the time until it ends
            ready, _, _ = select.select([leader], [], [], 60)
            if not ready:
                raise SystemExit(f"{' '.join(cmd)}: no line within 60 s")
            try:
                chunk = os.read(leader, 4096)
            except OSError:   # EIO: it ended
                break
            if not chunk:
                break
            seen += chunk
        return time.perf_counter() - start
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        os.close(leader)


def build(home: Path, count: int) -> str:
    """The registry (reused when present); returns the name with two versions."""
    marker = home / "extras.json"
    if not marker.exists():
        build_registry(home, count)
        marker.write_text(json.dumps({"versions": add_extras(home)}))
    return json.loads(marker.read_text())["versions"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "hub-bench-startup")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    home = args.root / f"home-{args.count}"
    two = build(home, args.count)
    env = bench_env(HUB_HOME=str(home), HUB_CACHE_DIR=str(args.root / "sql-cache"))
    hub = hub_command()
    name = json.loads(measure([*hub, "list", "--limit", "1", "--json"], env=env)[2])[0]["name"]
    reading = {
        "hub list --json": ["list", "--json"],
        "hub list": ["list"],
        "hub list --rank 8 --target q_proj --limit 50": ["list", "--rank", "8", "--target", "q_proj", "--limit", "50"],
        "hub show NAME": ["show", name],
        "hub show NAME --json": ["show", name, "--json"],
        "hub check --base B (stored verdicts)": ["check", "--base", BASE],
        "hub models": ["models"],
        "hub models NAME": ["models", "merged-000"],
        "hub base list": ["base", "list"],
        "hub base show B": ["base", "show", BASE],
        "hub versions NAME": ["versions", two],
        "hub status --no-check": ["status", "--no-check"],
        "hub --help": ["--help"],
    }
    print(f"{args.count} adapters in {home}; {os.cpu_count()} CPUs, load average {load_average()}")
    results: dict = {"count": args.count, "imports": {}, "wall": {}, "ratio": {}, "first_line": {}}

    print("\nheavy modules imported (second run: SQL already compiled)")
    for label, cmd in reading.items():
        for _ in range(2):
            mods = imported(cmd, env)
        results["imports"][label] = mods
        bad = [m for m in mods if m in ("torch", "transformers", "peft")]
        print(f"  {label:<44} {'FAIL ' if bad else 'ok   '}{', '.join(mods) or '-'}")

    floors = {"python -c pass": [sys.executable, "-c", "pass"], "import click": [sys.executable, "-c", "import click"],
              "import sqlalchemy": [sys.executable, "-c", "import sqlalchemy"]}
    walls: dict[str, list[float]] = {label: [] for label in [*reading, *floors]}
    for _ in range(args.repeat):   # rounds: every command once per round, the peer first
        for label, cmd in reading.items():
            walls[label].append(measure([*hub, *cmd], env=env, codes=(0, 1))[0])   # check: 1 = not all fit
        for label, cmd in floors.items():
            walls[label].append(measure(cmd, env=env)[0])
    peer = statistics.median(walls["hub list --json"])
    small = statistics.median(walls["hub list --rank 8 --target q_proj --limit 50"])
    print(f"\nmedian wall of {args.repeat} fresh processes; ratio to `hub list --json` (goal <= 1.5x) and to the "
          "50-row `hub list` (a list that prints little)")
    for label, times in walls.items():
        wall = statistics.median(times)
        results["wall"][label] = wall
        results["ratio"][label] = wall / peer
        print(f"  {label:<46} {wall:7.3f} s  {wall / peer:5.2f}x  {wall / small:5.2f}x")
    for label in ("hub list --json", "hub show NAME"):
        firsts = []
        for _ in range(3):
            fresh = tempfile.mkdtemp(prefix="hub-sql-")
            firsts.append(measure([*hub, *reading[label]], env={**env, "HUB_CACHE_DIR": fresh}, codes=(0, 1))[0])
            shutil.rmtree(fresh, ignore_errors=True)
        wall = statistics.median(firsts)
        results["wall"][label + " (first run)"] = wall
        print(f"  {label + ' (first run: compiles SQL)':<46} {wall:7.3f} s  {wall / peer:5.2f}x  {wall / small:5.2f}x")

    out = args.root / "out"
    torch_cmds = {
        "hub merge --dry-run": ["merge", "--base", BASE, name, "--out", str(out / "m"), "--dry-run"],
        "hub combine": ["combine", name, two, "--method", "cat", "--name", "bench-combined", "--dry-run"],
        "hub resize": ["resize", name, "--rank", "4", "--dry-run"],
        "hub export --format gguf": ["export", name, str(out / "x.gguf"), "--format", "gguf"],
    }
    print("\ncommands that import torch: time to their first line on a terminal (goal <= 0.3 s), median of 3")
    for label, cmd in torch_cmds.items():
        wall = statistics.median(first_line_s([*hub, *cmd], env) for _ in range(3))
        results["first_line"][label] = wall
        print(f"  {label:<44} {wall:7.3f} s")
    torch_s = statistics.median(measure([sys.executable, "-c", "import torch"], env=env)[0] for _ in range(3))
    results["wall"]["import torch"] = torch_s
    label = '(python -c "import torch")'
    print(f"  {label:<44} {torch_s:7.3f} s")
    worst = max((r, label) for label, r in results["ratio"].items() if label.startswith("hub ") and label != "hub list --json")
    print(f"\nslowest reading command: {worst[1]} at {worst[0]:.2f}x `hub list --json` ({peer:.3f} s); "
          f"load average at the end {load_average()}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
