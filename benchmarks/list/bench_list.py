"""`hub list` with filters over a registry of 100,000 adapters.

Builds (or reuses) a synthetic registry with realistic rows (synth_registry.py: per-module
maps of 32-224 entries, configs as PEFT writes them, tags, dates), then times:
  * Hub.list(ListFilter(...)) in one process: median of --repeat runs per filter, one page
    (--limit 50, what a screen shows) and, for information, the whole result;
  * the CLI `hub list --rank 8 --target q_proj --limit 50` as a fresh process each run
    (start-up included), after one untimed run that compiles the filter's SQL.
Goal: median <= 50 ms for the query (Hub.list with a page limit).

    python benchmarks/list/bench_list.py                  # 100,000 adapters
    python benchmarks/list/bench_list.py --count 10000    # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "startup"))

from procs import bench_env, hub_command, load_average, measure  # noqa: E402
from synth_registry import build_registry  # noqa: E402

from hub.listing.filters import ListFilter  # noqa: E402

FILTERS = {
    "rank 8": ListFilter(rank=8),
    "rank 8 + target q_proj": ListFilter(rank=8, targets=("q_proj",)),
    "target down_proj + tag prod": ListFilter(targets=("down_proj",), tags=("prod",)),
    "tag prod": ListFilter(tags=("prod",)),
    "base Llama-3.2-1B (substring)": ListFilter(base="Llama-3.2-1B"),
    "search 'sql'": ListFilter(search="sql"),
    "search, no match": ListFilter(search="no-such-adapter"),
    "flag dora, sort size desc": ListFilter(flags=("dora",), sort="size", desc=True),
    "no filter, sort created desc": ListFilter(sort="created", desc=True),
    "r 128 + dora + down_proj + prod": ListFilter(rank=128, flags=("dora",), targets=("down_proj",), tags=("prod",)),
}
CLI_ARGS = ["list", "--rank", "8", "--target", "q_proj", "--limit", "50"]


def timed(fn, repeat: int) -> tuple[float, float, object]:
    """(median wall s, median CPU s of this process, last result): on a shared machine the
    CPU time is the closer figure to what an idle core would take."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--home", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "hub-bench-list",
                    help="HUB_HOME of the synthetic registry (kept and reused for the same --count)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    home = args.home / str(args.count)
    if not (home / "registry.db").exists():
        t = time.perf_counter()
        build_registry(home, args.count)
        print(f"built {args.count} synthetic adapters in {time.perf_counter() - t:.0f} s", flush=True)
    size = (home / "registry.db").stat().st_size
    print(f"{args.count} adapters, registry.db {size / 1e9:.2f} GB; load average {load_average()}", flush=True)

    from hub.service import Hub

    results = {"count": args.count, "db_bytes": size, "queries": [], "cli": {}}
    print(f"{'filter':<34} {'page (ms)':>10} {'cpu (ms)':>9} {'rows':>5} {'whole (ms)':>11} {'rows':>7}")
    with Hub(home) as hub:
        hub.list(ListFilter(limit=1))  # opens the connection, runs any migration
        for label, flt in FILTERS.items():
            page = ListFilter(**{**vars(flt), "limit": args.limit})
            page_s, page_cpu, page_rows = timed(lambda: hub.list(page), args.repeat)
            whole_s, _, whole_rows = timed(lambda: hub.list(flt), max(1, args.repeat // 3))
            results["queries"].append({"filter": label, "page_ms": page_s * 1e3, "page_cpu_ms": page_cpu * 1e3,
                                       "page_rows": len(page_rows), "whole_ms": whole_s * 1e3,
                                       "whole_rows": len(whole_rows)})
            print(f"{label:<34} {page_s * 1e3:10.1f} {page_cpu * 1e3:9.1f} {len(page_rows):5d} {whole_s * 1e3:11.1f} "
                  f"{len(whole_rows):7d}", flush=True)
    medians = [q["page_ms"] for q in results["queries"]]
    cpus = [q["page_cpu_ms"] for q in results["queries"]]
    print(f"page queries: median {statistics.median(medians):.1f} ms wall ({statistics.median(cpus):.1f} ms CPU), "
          f"worst {max(medians):.1f} ms wall ({max(cpus):.1f} ms CPU); goal <= 50 ms")

    env = bench_env(HUB_HOME=str(home), HUB_CACHE_DIR=str(args.home / "sql-cache"))
    first, _, _ = measure([*hub_command(), *CLI_ARGS], env=env)  # compiles this shape's SQL (and bytecode)
    runs = [measure([*hub_command(), *CLI_ARGS], env=env) for _ in range(args.repeat)]
    walls = [r[0] for r in runs]
    results["cli"] = {"args": CLI_ARGS, "first_s": first, "median_s": statistics.median(walls),
                      "peak_rss_mb": max(r[1] for r in runs)}
    print(f"`hub {' '.join(CLI_ARGS)}`: first run {first:.2f} s (compiles the SQL), then median "
          f"{statistics.median(walls):.3f} s wall over {args.repeat} fresh processes")
    print(f"load average at the end: {load_average()}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
