"""Side by side on one registry, alternating, so that a loaded machine weighs on both alike:
the browser's answers before this rework (``--old FILE``: a copy of the old
hub/services/browse_index.py, e.g. `git show ef18305:hub/services/browse_index.py`) and now
(hub/listing/index.py, loaded by hub/registry/browse.py).

- first page in SQL (first paint): whole matching rows sorted, vs ids sorted over the
  covering listing index, then 200 rows read;
- index load (one pass vs name-ordered chunks) and the first chunk's arrival;
- per typed prefix of bench_tui.TYPED: count + first page;
- first sort per key.

Run:  python benchmarks/tui/bench_index_ab.py --home /tmp/tui-bench100k --old /tmp/old_browse_index.py
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench_tui import TYPED, _stats  # noqa: E402


def old_first_page(hub, flt):
    """The page query as it was: every matching row read and sorted, then LIMIT."""
    from hub.registry import adapters as q
    from hub.registry import browse

    columns = [c for c in browse._ROW_COLUMNS if not c.name.startswith("source_")]
    stmt = browse._filtered(flt).with_only_columns(*columns, maintain_column_froms=False).order_by(*browse._order(flt))
    with hub.db.read() as conn:
        rows = conn.execute(stmt.limit(flt.limit)).all()
        q.tags_for(conn, [r.id for r in rows])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="a registry built by bench_tui.py --home")
    parser.add_argument("--old", type=Path, required=True, help="the old browse_index.py")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from hub.listing.filters import ListFilter
    from hub.listing.query import parse_query
    from hub.service import Hub

    spec = importlib.util.spec_from_file_location("old_browse_index", args.old)
    old = importlib.util.module_from_spec(spec)
    sys.modules["old_browse_index"] = old     # dataclasses look their module up
    spec.loader.exec_module(old)
    hub = Hub(home=args.home)
    page = ListFilter(limit=200)
    t = {"old page": [], "new page": []}
    for _ in range(args.rounds):
        for label, fetch in (("old page", lambda: old_first_page(hub, page)),
                             ("new page", lambda: hub.browsing.list_rows(page, sources=False))):
            t0 = time.perf_counter()
            fetch()
            t[label].append(time.perf_counter() - t0)
    print(f"first page in SQL   old {_stats(t['old page'])}\n                    new {_stats(t['new page'])}"
          f"\n  ratio old/new (medians) {statistics.median(t['old page']) / statistics.median(t['new page']):.1f}x")

    t0 = time.perf_counter()
    with hub.db.read() as conn:
        old_index = old.BrowseIndex(old._index_entries(conn), hub.browsing._source_labels)
    old_load = time.perf_counter() - t0
    first = []
    t0 = time.perf_counter()
    new_index = hub.browsing.browse_index(on_chunk=lambda _i: first.append(time.perf_counter() - t0) if not first else None)
    new_load = time.perf_counter() - t0
    print(f"index load          old {old_load * 1000:.0f} ms, new {new_load * 1000:.0f} ms "
          f"(first chunk answering after {first[0] * 1000:.0f} ms)")

    per = {"old": [], "new": []}
    for _ in range(2):
        for field, text in TYPED:
            for n in range(1, len(text) + 1):
                flt = parse_query(text[:n]).filter
                for label, index in (("old", old_index), ("new", new_index)):
                    t0 = time.perf_counter()
                    index.count_matching(flt)
                    index.list_rows(replace(flt, limit=200), sources=False)
                    per[label].append(time.perf_counter() - t0)
            for index in (old_index, new_index):
                index._matches.clear()
    print(f"count + first page per typed prefix\n  old {_stats(per['old'])}\n  new {_stats(per['new'])}")
    for key in ("size", "base", "tags", "created", "params"):
        times = []
        for index in (old_index, new_index):
            t0 = time.perf_counter()
            index.list_rows(ListFilter(sort=key, limit=200), sources=False)
            times.append(time.perf_counter() - t0)
        print(f"first sort by {key:<8} old {times[0] * 1000:7.1f} ms   new {times[1] * 1000:7.1f} ms")
    hub.close()


if __name__ == "__main__":
    main()
