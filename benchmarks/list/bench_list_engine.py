"""`Hub.list` in one process: the listing engine's text path (what Hub.list runs on SQLite now,
the same compiled SQL as `hub list`'s fast path) against SQLAlchemy running the same query
(what Hub.list ran before), alternating round by round on one registry; prints the medians of
CPU time (the steadier figure on a shared machine) and wall time, and their ratio, per filter.

    python benchmarks/list/bench_list_engine.py                 # 1,000 synthetic adapters
    python benchmarks/list/bench_list_engine.py --count 10000 --rounds 9
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from synth_registry import build_registry  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--home", type=Path, help="registry folder (default: a temporary one)")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="hub-list-engine-")) / "home"
    os.environ.setdefault("HUB_CACHE_DIR", str(home.parent / "sql-cache"))
    build_registry(home, args.count, seed=1)

    from hub.listing.filters import ListFilter
    from hub.registry import list_engine
    from hub.service import Hub

    cases = {"whole list": (ListFilter(), False), "page of 50": (ListFilter(limit=50), False),
             "r:8 target:q_proj, page": (ListFilter(rank=8, targets=("q_proj",), limit=50), False),
             "tag:prod": (ListFilter(tags=("prod",)), False), "whole list, full": (ListFilter(), True)}
    print(f"Hub.list on {args.count:,} adapters, medians of {args.rounds} alternating rounds")
    with Hub(home) as hub:
        for label, (flt, full) in cases.items():
            cpu: dict[str, list[float]] = {"text": [], "sqlalchemy": []}
            wall: dict[str, list[float]] = {"text": [], "sqlalchemy": []}
            records = {}
            for _ in range(args.rounds):
                for name, run in (("text", list_engine.by_text), ("sqlalchemy", list_engine.by_alchemy)):
                    gc.collect()   # neither side pays for the other's garbage
                    c0, t0 = time.process_time(), time.perf_counter()
                    with hub.db.read() as conn:
                        found = run(conn, flt, full)
                    wall[name].append(time.perf_counter() - t0)
                    cpu[name].append(time.process_time() - c0)
                    records[name] = [r.to_dict() for r in found]
                    del found
            assert records["text"] == records["sqlalchemy"], label   # same records, field by field
            med = {k: statistics.median(v) * 1000 for k, v in (("cpu text", cpu["text"]),
                   ("cpu sqlalchemy", cpu["sqlalchemy"]), ("wall text", wall["text"]),
                   ("wall sqlalchemy", wall["sqlalchemy"]))}
            print(f"  {label:24s} {len(records['text']):6d} rows  CPU text {med['cpu text']:8.1f} ms  "
                  f"sqlalchemy {med['cpu sqlalchemy']:8.1f} ms  ({med['cpu sqlalchemy'] / med['cpu text']:.2f}x)   "
                  f"wall {med['wall text']:8.1f} / {med['wall sqlalchemy']:8.1f} ms "
                  f"({med['wall sqlalchemy'] / med['wall text']:.2f}x)")

if __name__ == "__main__":
    main()
