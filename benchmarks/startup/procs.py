"""Running contenders as separate processes: wall time, peak RSS, and an environment
that makes hub look installed (bytecode cached) without writing into the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# A wheel install compiles hub's .pyc files; this checkout's environment sets
# PYTHONDONTWRITEBYTECODE, so every start would compile hub from source. Benchmarks
# cache bytecode under a temporary prefix instead (the first run of each command fills it).
PYCACHE = Path(tempfile.gettempdir()) / "hub-bench-pycache"


def bench_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPYCACHEPREFIX=str(PYCACHE), HF_HUB_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1")
    env.update(extra)
    return env


def hub_command() -> list[str]:
    """The `hub` console script of this interpreter's environment (what users run)."""
    script = Path(sys.executable).parent / "hub"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from hub.cli import main; main()"]


TIME = "/usr/bin/time"
nan = float("nan")
last_cpu_s = [nan]


def measure(cmd: list[str], env: dict | None = None, codes=(0,)) -> tuple[float, float, bytes]:
    """Run ``cmd``; returns (wall seconds, peak RSS in MB of it or its largest descendant,
    stdout); an exit status outside ``codes`` stops the benchmark. GNU time starts the
    command and reports its peak RSS: a child forked straight
    from this (larger) process would start its peak RSS count at ours. The CPU seconds
    (user + system) of the last call are in ``last_cpu_s``."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as rss:
        wrapped = [TIME, "-f", "%M %U %S", "-o", rss.name, *cmd] if os.path.exists(TIME) else list(cmd)
        start = time.perf_counter()
        proc = subprocess.run(wrapped, env=env, stdout=out, stderr=err)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        if proc.returncode not in codes:
            raise SystemExit(f"{' '.join(map(str, cmd))} failed ({proc.returncode}): {err.read().decode()[-2000:]}")
        fields = (rss.read().strip().splitlines() or [""])[-1].split()
        peak_kb, cpu = (float(fields[0]), float(fields[1]) + float(fields[2])) if len(fields) == 3 else (nan, nan)
        last_cpu_s[0] = cpu
        return wall, peak_kb / 1024, out.read()


def drop_caches() -> bool:
    """Drop the page cache for cold-cache runs (root only); False where it cannot."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("3\n")
        return True
    except OSError:
        return False


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())
