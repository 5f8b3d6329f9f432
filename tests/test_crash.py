"""Crash safety: real `python -m hub` processes SIGKILLed at random points.

For each command (add, scan, rm, combine, merge, pull) a scenario runs many trials
against one registry that lives through all of them. Each trial starts the command,
kills it after a random delay (drawn over the command's own measured run time, with
extra weight near the end where the writes happen), then checks:

- the registry opens, and every row's files are in the store with the recorded size,
  hash, and manifest hash: no row whose files are missing or half-written;
- every store file without a row, every temp entry, is *explained* by `hub doctor`
  (orphan_blob / tmp_leftover / stale_view, nothing else);
- outputs (a merged model folder, a combined adapter) either do not exist or are
  complete: nothing half-written looks finished;
- every other trial, `hub doctor --fix` repairs everything and the store then holds
  exactly the files the rows reference (the trials in between leave the leftovers for
  the next command to live with);
- at the end every command, re-run to completion, succeeds, and `hub verify` passes.

HUB_CRASH_TRIALS (default 30, spread over the commands) and HUB_CRASH_SEED make
bigger, reproducible runs; the counts are printed for docs/reliability.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import copy_adapter


REPO = Path(__file__).resolve().parents[1]
COMMANDS = ("add", "scan", "rm", "combine", "merge", "pull")
TOTAL_TRIALS = int(os.environ.get("HUB_CRASH_TRIALS", "30"))
SEED = int(os.environ.get("HUB_CRASH_SEED", str(random.SystemRandom().randrange(1 << 30))))
EXPLAINED = {"orphan_blob", "tmp_leftover", "stale_view"}
STATS: dict[str, dict[str, int]] = {}


def trials_per_command() -> int:
    return max(2, TOTAL_TRIALS // len(COMMANDS))


# -- running and killing -------------------------------------------------------------------------

@dataclass
class Outcome:
    killed: bool
    returncode: int
    stderr: str
    elapsed: float
    first_write: float | None = None     # seconds until a watched folder first changed
    last_write: float | None = None      # ... and last changed


def _listing(folders) -> set:
    out = set()
    for folder in folders:
        try:
            out.update((str(folder), e.name) for e in os.scandir(folder))
        except FileNotFoundError:
            pass
    return out


def run_hub(args, env, kill_after: float | None = None, watch=(), kill_in_writes: float | None = None,
            rng: random.Random | None = None, timeout: float = 300) -> Outcome:
    """Run `python -m hub ARGS`. Kill it with SIGKILL after ``kill_after`` seconds, or, with
    ``kill_in_writes``, at a random point within that many seconds after the first change
    in the ``watch`` folders (staging under HUB_HOME/tmp, an output's parent): most of a
    short command's life is imports, and the interesting kills are among the writes."""
    cmd = [sys.executable, "-m", "hub", *map(str, args)]
    before = _listing(watch)
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    killed, first_write, last_write, deadline = False, None, None, None
    if kill_after is not None:
        deadline = start + kill_after
    while proc.poll() is None and (watch or deadline is not None):
        now = time.monotonic()
        listing = _listing(watch) if watch else before
        if listing != before:
            before, last_write = listing, now - start
            if first_write is None:
                first_write = last_write
                if kill_in_writes is not None:
                    deadline = now + rng.uniform(0, kill_in_writes)
        if deadline is not None and now >= deadline:
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.002)
    _, err = proc.communicate(timeout=timeout)
    if watch and proc.returncode is not None and _listing(watch) != before:
        last_write = time.monotonic() - start
    return Outcome(killed, proc.returncode, err, time.monotonic() - start, first_write, last_write)


# -- invariants --------------------------------------------------------------------------------

def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_registry(home: Path) -> dict:
    """Rows are whole: every file present with its recorded size and hash, and the
    adapter's identity (manifest hash) recomputes from them. Returns the doctor report."""
    from hub.inspect import FileInfo, manifest_sha256
    from hub.service import Hub

    with Hub(home=home) as hub:
        for rec in hub.list(full=False):
            full = hub.get(rec.name)
            assert full.files, f"{rec.name} has no files recorded"
            for f in full.files:
                path = hub.store.blob_path(f["sha256"]) if full.storage == "store" else Path(full.path) / f["name"]
                assert path.is_file(), f"row {rec.name}: {f['name']} is missing from the store"
                assert path.stat().st_size == f["size"], f"row {rec.name}: {f['name']} has the wrong size"
                assert sha256(path) == f["sha256"], f"row {rec.name}: {f['name']} does not match its hash"
            files = [FileInfo(f["name"], f["size"], f["sha256"]) for f in full.files]
            assert manifest_sha256(files) == full.sha256, f"row {rec.name}: manifest hash differs"
        report = hub.doctor(fix=False, grace_s=0)
    unexplained = [p for p in report.problems if p.kind not in EXPLAINED]
    assert not unexplained, f"doctor cannot explain: {[p.to_dict() for p in unexplained]}"
    return report.to_dict()


def repair(home: Path) -> None:
    from hub.service import Hub

    with Hub(home=home) as hub:
        report = hub.doctor(fix=True, grace_s=0)
        assert report.healthy, report.to_dict()
        referenced = {f["sha256"] for rec in hub.list() if rec.storage == "store" for f in hub.get(rec.name).files}
        with hub.db.read() as conn:   # `hub rm` keeps a removed adapter's files in the trash
            from hub.registry.trash import all_trashed_blobs

            referenced |= all_trashed_blobs(conn)
        assert set(hub.store.all_blobs()) == referenced, "store holds files no row (or trash entry) explains"
    tmp = home / "tmp"
    assert not tmp.exists() or not any(tmp.iterdir()), "tmp not empty after doctor --fix"


def verify_all(home: Path) -> None:
    from hub.service import Hub

    with Hub(home=home) as hub:
        bad = [r for r in hub.verify() if not r.ok]
    assert not bad, bad


def registered(home: Path) -> set[str]:
    from hub.service import Hub

    with Hub(home=home) as hub:
        return {r.name for r in hub.list()}


# -- scenarios -------------------------------------------------------------------------------

def variant(src: Path, dst: Path, alpha: float) -> Path:
    """A distinct real adapter: same PEFT tensors, another lora_alpha (so another identity)."""
    copy_adapter(src, dst)
    cfg = json.loads((dst / "adapter_config.json").read_text())
    cfg["lora_alpha"] = alpha
    (dst / "adapter_config.json").write_text(json.dumps(cfg, indent=2))
    return dst


KINDS = ("plain", "rslora", "dora", "patterns", "modules_to_save", "embedding", "gpt2", "qwen2", "all_linear")


@dataclass
class Scenario:
    """Subclasses: setup() once, args(i) per trial, check(i) after each trial, finish() at the end."""

    home: Path
    work: Path
    artifacts: object
    env: dict
    notes: dict = field(default_factory=dict)

    def setup(self) -> None: ...

    def watch(self) -> list[Path]:
        return [self.home / "tmp"]

    def args(self, i: int) -> list: ...

    def check(self, i: int, outcome: Outcome) -> None: ...

    def finish(self, n: int) -> None: ...


class AddScenario(Scenario):
    def setup(self):
        self.folders = [variant(self.artifacts[KINDS[i % len(KINDS)]][1], self.work / f"add-{i}", 1.0 + i)
                        for i in range(trials_per_command() + 1)]

    def args(self, i):
        return ["add", self.folders[i], "--name", f"a{i}", "--tag", "crash"]

    def check(self, i, outcome):
        if not outcome.killed:
            assert f"a{i}" in registered(self.home)

    def finish(self, n):
        for i in range(n):                          # every add that was killed, re-run, completes
            if f"a{i}" not in registered(self.home):
                out = run_hub(self.args(i), self.env)
                assert out.returncode == 0, out.stderr
        assert {f"a{i}" for i in range(n)} <= registered(self.home)


class ScanScenario(Scenario):
    PER_TREE = 4

    def setup(self):
        self.trees = []
        for i in range(trials_per_command() + 1):
            tree = self.work / f"tree-{i}"
            for j in range(self.PER_TREE):
                variant(self.artifacts[KINDS[(i + j) % len(KINDS)]][1], tree / f"t{i}" / f"m{j}", 100.0 + i * 10 + j)
            self.trees.append(tree)

    def args(self, i):
        return ["scan", self.trees[i], "--tag", "scanned"]

    def finish(self, n):
        for i in range(n):
            out = run_hub(self.args(i), self.env)
            assert out.returncode == 0, out.stderr
        assert len(registered(self.home)) == (n + 1) * self.PER_TREE  # the calibration run scanned one more


class RmScenario(Scenario):
    def setup(self):
        n = trials_per_command() + 1
        for i in range(n):
            folder = variant(self.artifacts[KINDS[i % len(KINDS)]][1], self.work / f"rm-{i}", 200.0 + i)
            assert run_hub(["add", folder, "--name", f"r{i}"], self.env).returncode == 0

    def watch(self):
        return []  # rm stages nothing: its kills are spread over the run time

    def args(self, i):
        return ["rm", "-y", f"r{i}"]

    def check(self, i, outcome):
        if not outcome.killed:
            assert f"r{i}" not in registered(self.home)

    def finish(self, n):
        for i in range(n):
            if f"r{i}" in registered(self.home):
                assert run_hub(self.args(i), self.env).returncode == 0
        assert not {f"r{i}" for i in range(n)} & registered(self.home)


class CombineScenario(Scenario):
    def setup(self):
        for kind in ("plain", "rslora"):
            assert run_hub(["add", self.artifacts[kind][1], "--name", kind], self.env).returncode == 0

    def args(self, i):
        return ["combine", f"plain:{1 + i / 10}", f"rslora:{0.5 + i / 7}", "--method", "cat", "--name", f"c{i}"]

    def check(self, i, outcome):
        names = registered(self.home)
        if f"c{i}" in names:                            # registered means complete (check_registry hashed it)
            from hub.service import Hub

            with Hub(home=self.home) as hub:
                rec = hub.get(f"c{i}")
                assert [p["name"] for p in rec.lineage] == ["plain", "rslora"]
        else:
            assert outcome.killed, outcome.stderr

    def finish(self, n):
        for i in range(n):
            if f"c{i}" not in registered(self.home):
                out = run_hub(self.args(i), self.env)
                assert out.returncode == 0, out.stderr
        assert {f"c{i}" for i in range(n)} <= registered(self.home)


class MergeScenario(Scenario):
    def setup(self):
        self.base = self.artifacts["plain"][0]
        assert run_hub(["add", self.artifacts["plain"][1], "--name", "plain"], self.env).returncode == 0
        from hub.formats.base_model import read_base_model

        self.base_tensors = set(read_base_model(self.base).tensors)
        self.outs = self.work / "merged"
        self.outs.mkdir()

    def watch(self):
        return [self.outs]

    def args(self, i):
        return ["merge", "--base", self.base, f"plain:{0.5 + i / 10}", "--out", self.outs / f"m{i}",
                "--device", "cpu", "--shard-size", "100KB", "--name", f"m{i}"]

    def check(self, i, outcome):
        out = self.outs / f"m{i}"
        if out.exists():
            check_model_folder(out, self.base_tensors)
        else:
            assert outcome.killed, outcome.stderr
        visible = [p.name for p in self.outs.iterdir() if not p.name.startswith(".")]
        assert set(visible) <= {f"m{k}" for k in (*range(i + 1), trials_per_command())}, visible
        hidden = [p for p in self.outs.iterdir() if p.name.startswith(".")]
        assert all(p.name.endswith((".incomplete", ".old")) for p in hidden), hidden
        self.notes["hidden_leftovers"] = self.notes.get("hidden_leftovers", 0) + len(hidden)
        from hub.service import Hub

        with Hub(home=self.home) as hub:       # doctor explains (and with --fix removes) the hidden leftovers
            found = {p.target for p in hub.doctor(grace_s=0, output_dirs=[self.outs]).problems}
        assert {str(p) for p in hidden} <= found

    def finish(self, n):
        from hub.service import Hub

        with Hub(home=self.home) as hub:
            assert hub.doctor(fix=True, grace_s=0, output_dirs=[self.outs]).healthy
        assert not [p for p in self.outs.iterdir() if p.name.startswith(".")]
        for i in range(n):
            if not (self.outs / f"m{i}").exists():
                out = run_hub(self.args(i), self.env)
                assert out.returncode == 0, out.stderr
            check_model_folder(self.outs / f"m{i}", self.base_tensors)


def check_model_folder(out: Path, base_tensors: set[str]) -> None:
    """A visible output folder must be a complete model: config, index, every shard whole."""
    from hub.formats.safetensors_header import read_header

    assert (out / "config.json").is_file(), f"{out} has no config.json"
    index = out / "model.safetensors.index.json"
    if index.exists():
        weight_map = json.loads(index.read_text())["weight_map"]
        shards = sorted(set(weight_map.values()))
    else:
        shards, weight_map = ["model.safetensors"], None
    names = set()
    for shard in shards:
        header = read_header(out / shard)           # validates sizes against the file: no truncation
        names |= set(header.tensors)
    if weight_map is not None:
        assert names == set(weight_map)
    assert names == base_tensors, f"{out}: tensors differ from the base's"


class PullScenario(Scenario):
    server: object = None

    def setup(self):
        self.repos = []
        for i in range(trials_per_command() + 1):
            folder = variant(self.artifacts[KINDS[i % len(KINDS)]][1], self.work / f"pull-{i}", 300.0 + i)
            repo_id = self.server.repo_id("crash")
            files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
            self.server.store.create_repo(repo_id, private=False, author=self.server.user)
            self.server.store.raw_commit(repo_id, files)
            self.repos.append(repo_id)

    def args(self, i):
        return ["pull", self.repos[i], "--name", f"p{i}"]

    def finish(self, n):
        for i in range(n):
            out = run_hub(self.args(i), self.env)
            assert out.returncode == 0, out.stderr
        assert {f"p{i}" for i in range(n)} <= registered(self.home)


SCENARIOS = {"add": AddScenario, "scan": ScanScenario, "rm": RmScenario, "combine": CombineScenario,
             "merge": MergeScenario, "pull": PullScenario}


def _available(command: str) -> bool:
    from hub.cli import cli, load_commands

    load_commands()
    return command in cli.commands


# -- the harness -----------------------------------------------------------------------------

@pytest.mark.parametrize("command", COMMANDS)
def test_sigkill_at_random_points(command, artifacts, hub_home, tmp_path, request):
    assert _available(command), f"`hub {command}` is missing"
    env = {**os.environ, "HUB_HOME": str(hub_home), "PYTHONPATH": str(REPO)}
    env.pop("HUB_DATABASE_URL", None) if not os.environ.get("HUB_TEST_DATABASE_URL") else None
    scenario = SCENARIOS[command](hub_home, tmp_path, artifacts, env)
    if command == "pull":
        server = request.getfixturevalue("hub_server")
        scenario.server = server
        scenario.env = {**server.env(hf_home=tmp_path / "hf-home"), "HUB_HOME": env["HUB_HOME"],
                        "PYTHONPATH": env["PYTHONPATH"]}
    scenario.setup()
    rng = random.Random(f"{SEED}-{command}")
    n = trials_per_command()
    stats = STATS.setdefault(command, {"trials": 0, "killed": 0, "finished": 0, "left_leftovers": 0, "repairs": 0})

    watch = scenario.watch()
    calibration = run_hub(scenario.args(n), scenario.env, watch=watch)   # an undisturbed run sets the time scale
    assert calibration.returncode == 0, calibration.stderr
    scale, writes_from, writes_to = calibration.elapsed, calibration.first_write, calibration.last_write
    for i in range(n):
        if writes_from is not None and rng.random() < 2 / 3:
            # somewhere among the writes: from the first staged file to a little past the last change
            window = 1.25 * (writes_to - writes_from) + 0.01
            outcome = run_hub(scenario.args(i), scenario.env, watch=watch, rng=rng, kill_in_writes=window)
        else:
            outcome = run_hub(scenario.args(i), scenario.env, kill_after=rng.uniform(0.0, 1.05) * scale)
        assert outcome.killed or outcome.returncode == 0, f"trial {i} failed by itself: {outcome.stderr}"
        stats["trials"] += 1
        stats["killed" if outcome.killed else "finished"] += 1
        report = check_registry(hub_home)
        stats["left_leftovers"] += bool(report["problems"])
        scenario.check(i, outcome)
        if i % 2:
            repair(hub_home)
            stats["repairs"] += 1
    repair(hub_home)
    scenario.finish(n)
    check_registry(hub_home)
    repair(hub_home)
    verify_all(hub_home)
    if scenario.notes:
        stats.update(scenario.notes)
    stats["passed"] = 1


def test_zz_crash_summary(capsys):
    """Prints the counts for docs/reliability.md (runs last in this module)."""
    total = sum(s["trials"] for s in STATS.values())
    failed = [c for c, s in STATS.items() if not s.get("passed")]
    verdict = "zero losses" if not failed else f"FAILED: {', '.join(failed)}"
    with capsys.disabled():
        print(f"\ncrash trials run: {total} (seed {SEED}), {verdict}")
        for command, s in STATS.items():
            print(f"  hub {command:<8} " + ", ".join(f"{k} {v}" for k, v in s.items()))
    assert all(s["trials"] == s["killed"] + s["finished"] for s in STATS.values())
    assert not failed, f"crash trials failed for: {', '.join(failed)}"
