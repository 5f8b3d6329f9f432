"""Concurrency: 8 processes add, tag, rename and remove adapters at once on one registry.

Each worker is its own OS process running the real CLI (click's runner, in-process
to that worker), started together behind a barrier. The plan mixes:

- adapters of its own (distinct identities that share weight blobs across workers,
  so `rm` in one process races `add` reusing the blob in another);
- the same "race" adapters added by every worker under different names (exactly
  one row each must survive: no duplicates);
- tags added by every worker to the same "shared" adapters, one of them the same tag
  from all (no lost updates, no duplicate-key errors);
- renames, removals and `list --json` reads in between.

Afterwards the registry must hold exactly the rows the plans imply, with exactly
the tags, the store exactly the files those rows reference, `hub doctor` must be
clean and `hub verify` pass; no command may fail, and "database is locked" must
never reach the user. HUB_CONCURRENCY_ADAPTERS (default 6 per worker) scales it.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path


WORKERS = 8
OWN = int(os.environ.get("HUB_CONCURRENCY_ADAPTERS", "6"))
RACES = 2
SHARED = 2
KINDS = ("plain", "rslora", "dora", "patterns", "modules_to_save", "embedding", "gpt2", "qwen2")
TOTALS = {"operations": 0, "runs": 0}


def _variant(src: Path, dst: Path, alpha: float) -> Path:
    import shutil

    shutil.copytree(src, dst)
    cfg = json.loads((dst / "adapter_config.json").read_text())
    cfg["lora_alpha"] = alpha
    (dst / "adapter_config.json").write_text(json.dumps(cfg, indent=2))
    return dst


HOT_TAGS = 6


def plan_for(w: int, own: list[Path], races: list[Path]) -> list[list[str]]:
    # first, straight after the barrier: all 8 add the same new tags to one adapter
    ops: list[list[str]] = [["tag", "shared0", f"hot{k}"] for k in range(HOT_TAGS)]
    for j, folder in enumerate(own):
        ops.append(["add", str(folder), "--name", f"w{w}-a{j}", "--tag", f"w{w}"])
        if j == 1:
            ops.append(["list", "--json", "--tag", f"w{w}"])
    for r, folder in enumerate(races):
        ops.append(["add", str(folder), "--name", f"race{r}-w{w}", "--tag", "race"])
    for s in range(SHARED):
        ops.append(["tag", f"shared{s}", f"w{w}", "hot"])  # "hot": the same new tag from all 8 at once
    for j in range(len(own)):
        ops.append(["tag", f"w{w}-a{j}", f"extra{j}"])
        if j % 3 == 0:
            ops.append(["rm", "-y", f"w{w}-a{j}"])
    if len(own) > 1:
        ops.append(["rename", f"w{w}-a1", f"w{w}-a1-renamed"])
    ops.append(["list", "--json"])
    return ops


def worker(home: str, env: dict, ops: list[list[str]], barrier) -> list[tuple[list[str], int, str]]:
    """Runs in its own process: every op through the real CLI, one Hub per command."""
    os.environ.update(env)
    os.environ["HUB_HOME"] = home
    from click.testing import CliRunner

    from hub.cli import cli

    runner = CliRunner()
    barrier.wait()
    out = []
    for args in ops:
        result = runner.invoke(cli, args, catch_exceptions=True)
        problem = result.stderr
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            problem += f" {type(result.exception).__name__}: {result.exception}"
        out.append((args, result.exit_code, problem))
    return out


def _run_worker(args):
    home, env, ops, barrier, queue = args
    try:
        queue.put(worker(home, env, ops, barrier))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        queue.put([(["worker"], 99, repr(exc))])


def hammer(home: Path, artifacts, work: Path, env: dict) -> dict:
    """Seed, run the 8 workers, check the result; returns counts."""
    from hub.service import Hub

    own = {w: [_variant(artifacts[KINDS[(w + j) % len(KINDS)]][1], work / f"w{w}-{j}", 1000 + 100 * w + j)
               for j in range(OWN)] for w in range(WORKERS)}
    races = [_variant(artifacts[KINDS[r]][1], work / f"race{r}", 5000 + r) for r in range(RACES)]
    with Hub(home=home) as hub:                        # shared adapters every worker tags
        for s in range(SHARED):
            hub.add(_variant(artifacts[KINDS[s]][1], work / f"shared{s}", 7000 + s), name=f"shared{s}", tags=["seed"])
        race_shas = {}
        from hub.inspect import inspect_adapter

        for r, folder in enumerate(races):
            race_shas[r] = inspect_adapter(folder).sha256

    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    queue = ctx.Queue()
    plans = {w: plan_for(w, own[w], races) for w in range(WORKERS)}
    procs = [ctx.Process(target=_run_worker, args=((str(home), env, plans[w], barrier, queue),))
             for w in range(WORKERS)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=900) for _ in procs]
    for p in procs:
        p.join(timeout=60)

    ops = [r for rs in results for r in rs]
    failures = [(a, c, e) for a, c, e in ops if c != 0]
    assert not failures, failures[:5]
    locked = [(a, e) for a, _, e in ops if "locked" in e.lower()]
    assert not locked, locked[:5]

    with Hub(home=home) as hub:
        records = {r.name: r for r in hub.list()}
        expected = {}
        for w in range(WORKERS):
            for j in range(OWN):
                if j % 3 == 0:
                    continue
                name = f"w{w}-a{j}-renamed" if j == 1 else f"w{w}-a{j}"
                expected[name] = {f"w{w}", f"extra{j}"}
        for s in range(SHARED):
            expected[f"shared{s}"] = {"seed", "hot", *(f"w{w}" for w in range(WORKERS))}
        expected["shared0"] |= {f"hot{k}" for k in range(HOT_TAGS)}
        race_rows = {r: [n for n in records if n.startswith(f"race{r}-w")] for r in range(RACES)}
        for r, names in race_rows.items():
            assert len(names) == 1, f"race adapter {r} registered {len(names)} times: {names}"
            assert records[names[0]].sha256 == race_shas[r]
            expected[names[0]] = {"race"}
        assert set(records) == set(expected), (set(records) ^ set(expected))
        for name, tags in expected.items():
            assert set(records[name].tags) == tags, (name, records[name].tags)
        shas = [r.sha256 for r in records.values()]
        assert len(shas) == len(set(shas))
        referenced = {f["sha256"] for n in records if records[n].storage == "store" for f in hub.get(n).files}
        with hub.db.read() as conn:   # `hub rm` keeps a removed adapter's files in the trash
            from hub.registry.trash import all_trashed_blobs

            referenced |= all_trashed_blobs(conn)
        assert set(hub.store.all_blobs()) == referenced
        report = hub.doctor(grace_s=0)
        assert report.healthy, report.to_dict()
        assert all(r.ok for r in hub.verify()), [r for r in hub.verify() if not r.ok]
    return {"operations": len(ops), "rows": len(records)}


def backend() -> str:
    return "PostgreSQL" if os.environ.get("HUB_DATABASE_URL", "").startswith("postgresql") else "SQLite"


def test_eight_processes_on_one_registry(artifacts, hub_home, tmp_path):
    """On SQLite by default; on PostgreSQL under tests/pg_plugin.py (HUB_DATABASE_URL is then set)."""
    env = {k: v for k, v in os.environ.items() if k.startswith(("HUB_", "HF_", "PYTHON"))}
    counts = hammer(hub_home, artifacts, tmp_path / "work", env)
    TOTALS["operations"] += counts["operations"]
    TOTALS["runs"] += 1


def test_zz_concurrency_summary(capsys):
    # the claim printed below holds only if every run of the hammer finished its checks
    assert TOTALS["runs"] >= 1 and TOTALS["operations"] > 0, "no concurrency run completed its checks"
    with capsys.disabled():
        print(f"\nconcurrent operations: {TOTALS['operations']} by {WORKERS} processes on {backend()} "
              f"({TOTALS['runs']} run(s)), zero lost or duplicated rows, no 'database is locked'")
