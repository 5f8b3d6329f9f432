"""`hub tui` on a registry of 100,000 adapters: first paint, filter latency, deep jumps.

The registry is filled with benchmarks/list/synth_registry.py (synthetic but valid rows,
written straight into the registry tables, the shape `hub add` stores for realistic
Llama-family adapters). Measured in one run, side by side:

- hub tui: the app factory under Textual's headless driver (Pilot), timed from app
  start to the table's first rows painted (the compositor has drawn them), then per
  keystroke while typing each query into the filter box (the filter language), until that
  filter's count and first page are painted; then re-sorts, until the first page in the new
  order is painted. The box is focused (as `/` does) before the typing starts;
- end to end in a real terminal (tmux): from launching `hub tui` to the first adapter
  name on screen (Python start-up and imports included);
- the peer: the straightforward Textual build, a DataTable filled from ``Hub.list()``
  (every row loaded, then ``add_rows``), on the same registry, for the same steps.

Run:  python benchmarks/tui/bench_tui.py --rows 100000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks" / "list"))
sys.path.insert(0, str(ROOT))

SIZE = (120, 36)
VERBOSE = "-v" in sys.argv
# (label, query typed one key at a time into the filter box)
TYPED = (("words", "sql-r16"), ("base", "base:llama-3"), ("rank", "r:16"), ("target", "target:gate_proj"),
         ("tag", "tag:prod"))


async def _until(pilot, cond, timeout: float = 120.0) -> None:
    # plain polling: Pilot.pause/press add sleeps and wait for the process to look idle,
    # which would be timed too
    deadline = time.perf_counter() + timeout
    while not cond():
        if time.perf_counter() > deadline:
            raise TimeoutError("the TUI did not get there in time")
        await asyncio.sleep(0.0005)


PAINTS: list[int] = []   # per repaint of the browser: the table query it showed (its generation)


def _record_paints() -> None:
    """Latencies end when the answer is on screen, not when the data is ready: note what each
    compositor refresh of the browser showed."""
    from textual.screen import Screen

    from hub.tui.screens.main import MainScreen

    paint = Screen._compositor_refresh
    if getattr(paint, "recorded", False):
        return

    def recorded(screen) -> None:
        paint(screen)
        if isinstance(screen, MainScreen):
            try:
                PAINTS.append(screen.table._applied_generation)
            except Exception:  # noqa: BLE001 - composing or closing: no table yet or any more
                pass

    recorded.recorded = True
    Screen._compositor_refresh = recorded


async def _shown(pilot, table) -> None:
    """Until the latest query's rows are applied and painted."""
    await _until(pilot, lambda: table._generation == table._applied_generation and table.settled)
    generation = table._generation
    await _until(pilot, lambda: PAINTS and PAINTS[-1] >= generation)


def _key(app, key: str) -> None:
    """Deliver one key the way the terminal driver does."""
    from textual import events
    from textual.keys import _character_to_key

    name = _character_to_key(key) if len(key) == 1 and not key.isalnum() else key
    app._driver.send_message(events.Key(name, key if len(key) == 1 else None))


def _stats(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return f"median {statistics.median(ms):7.1f} ms  p95 {p95:7.1f} ms  max {ms[-1]:7.1f} ms  (n={len(ms)})"


async def _type_fields(pilot, screen, total: int) -> tuple[dict, dict]:
    """Per query: seconds per keystroke until the table shows the new count and first page,
    and the final match count. Keystrokes answered while the index was still loading are
    also counted in rows["(while loading)"]."""
    table = screen.table
    rows: dict[str, list[float]] = {"(while loading)": []}
    matches: dict[str, int] = {}
    widget = screen.query_one("#filter")
    widget.focus()
    # as after `/`: the footer shows the box's keys before the user starts typing
    await pilot.pause()
    for field, text in TYPED:
        rows[field] = []
        for ch in text:
            before = table._generation
            t0 = time.perf_counter()
            _key(pilot.app, ch)
            if screen.filter_bar.problem or ch == ":":
                await asyncio.sleep(0.01)  # a key that completes no term changes nothing to wait for
                if table._generation == before:
                    continue
            loading = not screen.source.indexed
            await _until(pilot, lambda: table._generation > before)
            await _shown(pilot, table)
            rows[field].append(time.perf_counter() - t0)
            if loading:
                rows["(while loading)"].append(rows[field][-1])
            if VERBOSE:
                print(f"    {field} {ch!r}: {rows[field][-1] * 1000:.1f} ms ({table.total:,} rows)", file=sys.stderr)
        matches[field] = table.total
        widget.value = ""
        await _until(pilot, lambda: table.settled and (table.total == total or table.partial))
    return rows, matches


async def bench_hub_tui(home: Path, index: str = "ready") -> dict:
    """index: "ready" types once the browse index is loaded, "loading" types from first
    paint on (while it loads, chunk by chunk), "none" never loads it (every filter in SQL)."""
    from hub.service import Hub
    from hub.tui.app import create_app
    from hub.tui.screens.main import MainScreen
    from hub.tui.source import RegistrySource

    if index == "none":   # what the filters would cost in SQL
        RegistrySource.load_index = lambda self, on_chunk=None: 0
    import hub.tui.screens.main  # noqa: F401 - imports are timed end to end (tmux), not here
    out: dict = {}
    _record_paints()
    PAINTS.clear()      # generations start again with each app
    started = time.perf_counter()
    hub = Hub(home=home)
    app = create_app(hub)
    async with app.run_test(size=SIZE) as pilot:
        screen = next(s for s in app.screen_stack if isinstance(s, MainScreen))
        table = screen.table
        await _shown(pilot, table)
        out["first_paint"] = time.perf_counter() - started
        out["total"] = table.total
        await _until(pilot, lambda: screen.details.current_name == table.current_name)
        out["details"] = time.perf_counter() - started
        if index == "ready":
            await _until(pilot, lambda: screen.source.indexed, timeout=600)
            out["index_ready"] = time.perf_counter() - started
        out["filter"], out["matches"] = await _type_fields(pilot, screen, out["total"])
        loading = out["filter"].pop("(while loading)")
        if loading:
            out["while_loading"] = loading
        if index == "loading":
            await _until(pilot, lambda: screen.source.indexed, timeout=600)
            out["index_ready"] = time.perf_counter() - started

        table.focus()
        await pilot.pause()
        t0 = time.perf_counter()
        _key(pilot.app, "end")
        await _until(pilot, lambda: table.settled and table.cursor == table.total - 1)
        painted = len(PAINTS)
        await _until(pilot, lambda: len(PAINTS) > painted)
        out["jump_end"] = time.perf_counter() - t0
        sorts = {}
        for key in ("size", "base", "tags", "created", "params", "name"):
            t0 = time.perf_counter()
            table.sort_by(key)
            await _until(pilot, lambda: table.filter.sort == key)
            await _shown(pilot, table)
            sorts[key] = time.perf_counter() - t0
        out["sort"] = sorts
    hub.close()
    return out


async def bench_peer(home: Path) -> dict:
    """DataTable + Hub.list(): what a first Textual version would do."""
    from textual.app import App
    from textual.widgets import DataTable

    from hub.display import fmt_num, human_size
    from hub.listing.filters import ListFilter
    from hub.service import Hub

    hub = Hub(home=home)

    def rows(flt):
        return [(r.name, r.base or r.base_model or "-", r.r, fmt_num(r.lora_alpha), ",".join(r.target_modules),
                 ",".join(r.flags), human_size(r.size_bytes), ",".join(r.tags)) for r in hub.list(flt)]

    class Peer(App):
        def compose(self):
            yield DataTable(id="t")

        def on_mount(self):
            t = self.query_one(DataTable)
            t.add_columns("Name", "Base", "R", "Alpha", "Targets", "Flags", "Size", "Tags")
            t.add_rows(rows(ListFilter()))

        def refilter(self, flt):
            t = self.query_one(DataTable)
            t.clear()
            t.add_rows(rows(flt))

    out: dict = {}
    started = time.perf_counter()
    app = Peer()
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(DataTable)
        await _until(pilot, lambda: table.row_count > 0, timeout=600)
        out["first_paint"] = time.perf_counter() - started
        # one filter step, the one typed last in the text field (a narrow match)
        t0 = time.perf_counter()
        app.refilter(ListFilter(search=TYPED[0][1]))
        await pilot.pause()
        out["filter"] = time.perf_counter() - t0
        out["matches"] = table.row_count
        # and a broad one (every rank-16 adapter)
        t0 = time.perf_counter()
        app.refilter(ListFilter(rank=16))
        await pilot.pause()
        out["filter_broad"] = time.perf_counter() - t0
        out["matches_broad"] = table.row_count
    hub.close()
    return out


def bench_index_alone(home: Path) -> dict:
    """The browse index without the UI: load time, and count + first page per typed prefix."""
    from dataclasses import replace

    from hub.listing.filters import ListFilter
    from hub.service import Hub
    from hub.listing.query import parse_query

    with Hub(home=home) as hub:
        t0 = time.perf_counter()
        index = hub.browsing.browse_index()
        out = {"load": time.perf_counter() - t0, "queries": []}
        index.count_matching(ListFilter())
        for field, text in TYPED:
            for n in range(1, len(text) + 1):
                flt = parse_query(text[:n]).filter
                t0 = time.perf_counter()
                index.count_matching(flt)
                index.list_rows(replace(flt, limit=200), sources=False)
                out["queries"].append(time.perf_counter() - t0)
    return out


def bench_terminal(home: Path, first_name: str) -> float | None:
    """Seconds from launching `hub tui` in tmux to the first adapter's name on screen."""
    if not shutil.which("tmux"):
        return None
    exe = Path(sys.executable).with_name("hub")
    session = f"hubbench{os.getpid()}"
    env_cmd = f"HUB_HOME={home} {exe} tui"
    t0 = time.perf_counter()
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", str(SIZE[0]), "-y", str(SIZE[1]), env_cmd],
                   check=True)
    try:
        while time.perf_counter() - t0 < 60:
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True,
                                    text=True).stdout
            if first_name[:20] in screen:
                return time.perf_counter() - t0
            time.sleep(0.01)
        return None
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--home", type=Path, help="keep the synthetic registry here (default: a temp dir)")
    parser.add_argument("--no-peer", action="store_true", help="skip the DataTable peer")
    parser.add_argument("--only", choices=("index", "loading", "sql"), help="run one of the hub tui passes")
    parser.add_argument("-v", action="store_true", help="print every keystroke's time")
    parser.add_argument("--passes", type=int, default=1,
                        help="run each hub tui pass N times (a fresh app each time) and also report the "
                             "keystrokes of all passes pooled: one pass's p95 rests on its 3 slowest keys")
    args = parser.parse_args()
    if args.passes < 1:
        parser.error(f"--passes must be 1 or more, not {args.passes}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from synth_registry import build_registry

    tmp = None
    home = args.home
    if home is None:
        tmp = tempfile.TemporaryDirectory(prefix="hub-bench-tui-")
        home = Path(tmp.name)
    try:
        t0 = time.perf_counter()
        if not (home / "registry.db").exists():
            build_registry(home, args.rows)
        print(f"registry: {args.rows:,} synthetic adapters in {home} ({time.perf_counter() - t0:.1f} s to build)")

        def report(run: dict, title: str) -> None:
            keystrokes = [x for samples in run["filter"].values() for x in samples]
            print(f"\n{title} ({SIZE[0]}x{SIZE[1]}, {run['total']:,} adapters)")
            print(f"  first paint (app start -> rows painted)    {run['first_paint'] * 1000:8.1f} ms")
            print(f"  details pane of the first row              {run['details'] * 1000:8.1f} ms")
            if "index_ready" in run:
                print(f"  browse index loaded (in the background)    {run['index_ready'] * 1000:8.1f} ms")
            print(f"  filter: keystroke -> rows painted          {_stats(keystrokes)}")
            if run.get("while_loading"):
                print(f"    of which while the index loaded          {_stats(run['while_loading'])}")
            for field, text in TYPED:
                print(f"    {field:<7} typing {text!r:<12} -> {run['matches'][field]:>6,} rows  "
                      f"{_stats(run['filter'][field])}")
            print(f"  jump to the last row (end)                 {run['jump_end'] * 1000:8.1f} ms")
            for key, secs in run["sort"].items():
                print(f"  sort by {key:<6}                             {secs * 1000:8.1f} ms", flush=True)

        def passes(index: str, title: str) -> dict:
            runs = []
            for n in range(args.passes):
                runs.append(asyncio.run(bench_hub_tui(home, index=index)))
                report(runs[-1], title + (f", pass {n + 1} of {args.passes}" if args.passes > 1 else ""))
            if args.passes > 1:
                keys = [x for run in runs for samples in run["filter"].values() for x in samples]
                paints = [run["first_paint"] for run in runs]
                print(f"  pooled over {args.passes} passes: keystroke -> rows painted {_stats(keys)}")
                print(f"  pooled over {args.passes} passes: first paint {_stats(paints)}", flush=True)
            return runs[0]

        ours = None
        if args.only in (None, "index"):
            ours = passes("ready", "hub tui")
            from hub.listing.filters import ListFilter
            from hub.service import Hub

            with Hub(home=home) as hub:
                first = hub.browsing.list_rows(ListFilter(limit=1))[0].name
            terminal = bench_terminal(home, first)
            if terminal is not None:
                print(f"  end to end in tmux (launch -> rows shown)   {terminal * 1000:8.1f} ms", flush=True)
            alone = bench_index_alone(home)
            print(f"  index alone: load {alone['load'] * 1000:.0f} ms; count + first page per typed prefix "
                  f"{_stats(alone['queries'])}", flush=True)
        if args.only in (None, "loading"):
            passes("loading", "hub tui typing from first paint on, while the index loads (partial answers)")
        if args.only in (None, "sql"):
            report(asyncio.run(bench_hub_tui(home, index="none")),
                   "hub tui without its index (every filter in SQL; for reference)")

        if not args.no_peer and ours is not None:
            peer = asyncio.run(bench_peer(home))
            print("\npeer: DataTable filled from Hub.list()")
            print(f"  first paint                                {peer['first_paint'] * 1000:8.1f} ms"
                  f"   ratio peer/hub {peer['first_paint'] / ours['first_paint']:6.1f}x")
            med = statistics.median(ours["filter"]["words"])
            print(f"  filter {TYPED[0][1]!r} ({peer['matches']:,} rows)             {peer['filter'] * 1000:8.1f} ms"
                  f"   ratio peer/hub {peer['filter'] / med:6.1f}x")
            med_r = statistics.median(ours["filter"]["rank"])
            print(f"  filter rank=16 ({peer['matches_broad']:,} rows)          {peer['filter_broad'] * 1000:8.1f} ms"
                  f"   ratio peer/hub {peer['filter_broad'] / med_r:6.1f}x")
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
