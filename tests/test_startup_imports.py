"""Reading commands start fast: they import neither torch, transformers nor peft (1.5 s and
4.5 s of imports), and on a SQLite registry, once their SQL was compiled by an earlier
run, neither SQLAlchemy, alembic, huggingface_hub, jsonschema, numpy nor textual
(hub.reader -> hub.registry.reading on hub.registry.fastread's sqlite3 runner). Commands
that import torch say what they are about to do first. Each command runs in a fresh
interpreter that reports sys.modules at exit; speed itself is measured in
benchmarks/startup, not here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_cli

ON_POSTGRES = bool(os.environ.get("HUB_TEST_DATABASE_URL"))
HEAVY = ("torch", "transformers", "peft")
# what the fast path never needs (each costs 0.05-0.4 s to import)
SLOW = ("sqlalchemy", "alembic", "huggingface_hub", "jsonschema", "numpy", "textual", "safetensors")
PROBE = """
import atexit, json, sys
atexit.register(lambda: print("\\nMODULES " + json.dumps(sorted(sys.modules)), file=sys.stderr))
sys.argv = ["hub", *sys.argv[1:]]
from hub.cli import main
main()
"""
READING = [
    ["show", "p"], ["show", "p@1", "--json"], ["show", "p@prod"], ["versions", "p"], ["versions", "p", "--json"],
    ["models"], ["models", "m", "--json"], ["base", "list"], ["base", "list", "--json"], ["base", "show", "llama"],
    ["base", "show", "llama", "--modules", "--json"], ["check", "--base", "llama"],
    ["check", "--base", "llama", "--json"], ["status", "--no-check"], ["status", "p", "--no-check", "--json"],
    ["list"], ["list", "--json"], ["list", "--rank", "8", "--target", "q_proj", "--limit", "50"],
]


def imported(*args: str, env: dict, codes=(0,)) -> set[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode in codes, proc.stderr
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("MODULES "))
    return {m.split(".")[0] for m in json.loads(line[len("MODULES "):])}


@pytest.fixture(scope="module")
def registry(artifacts, tmp_path_factory):
    """Two versions of p (alias prod), a registered base with stored verdicts, a merged model
    (on PostgreSQL: in a database of this module's own, dropped at the end)."""
    home = tmp_path_factory.mktemp("startup") / "home"
    env = {**os.environ, "HUB_HOME": str(home), "HUB_CACHE_DIR": str(home.parent / "sql-cache")}
    env.pop("HUB_DATABASE_URL", None)
    database = _module_database() if ON_POSTGRES else None
    if database:
        env["HUB_DATABASE_URL"] = database[1]
    saved = dict(os.environ)
    os.environ.pop("HUB_DATABASE_URL", None)
    os.environ.update({k: env[k] for k in ("HUB_HOME", "HUB_CACHE_DIR", "HUB_DATABASE_URL") if k in env})
    try:
        for args in (["add", artifacts["plain"][1], "--name", "p", "--tag", "t"],
                     ["add", artifacts["patterns"][1], "--name", "p", "--new-version"],
                     ["alias", "p", "prod", "1"],
                     ["base", "add", artifacts.base("llama"), "--name", "llama"],
                     ["merge", "--base", "llama", "p", "--out", home.parent / "m", "--device", "cpu"]):
            result = run_cli(*args)
            assert result.exit_code == 0, (args, result.stderr)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    yield env
    if database:
        from tests.pg_server import admin_sql

        admin_sql(os.environ["HUB_TEST_DATABASE_URL"], f'DROP DATABASE IF EXISTS "{database[0]}" WITH (FORCE)')


def _module_database() -> tuple[str, str]:
    """(name, URL) of a new PostgreSQL database (tests/pg_plugin makes one per test)."""
    import uuid

    from sqlalchemy.engine import make_url

    from tests.pg_server import admin_sql

    admin = os.environ["HUB_TEST_DATABASE_URL"]
    name = f"hub_test_{uuid.uuid4().hex[:16]}"
    admin_sql(admin, f'CREATE DATABASE "{name}" TEMPLATE template0 STRATEGY FILE_COPY')
    return name, make_url(admin).set(database=name).render_as_string(hide_password=False)


@pytest.mark.parametrize("args", READING, ids=" ".join)
def test_reading_commands_import_nothing_heavy(registry, args):
    imported(*args, env=registry)    # the first run may compile SQL and fill bytecode caches
    modules = imported(*args, env=registry)
    assert not modules & set(HEAVY), f"`hub {' '.join(args)}` imported {sorted(modules & set(HEAVY))}"
    if not ON_POSTGRES:    # PostgreSQL has no fast path: SQLAlchemy reads it
        assert not modules & set(SLOW), f"`hub {' '.join(args)}` imported {sorted(modules & set(SLOW))}"


def test_a_missing_name_is_answered_without_sqlalchemy_too(registry):
    imported("show", "nope", env=registry, codes=(1,))
    modules = imported("show", "nope", env=registry, codes=(1,))
    assert not modules & set(HEAVY)
    if not ON_POSTGRES:
        assert "sqlalchemy" not in modules


def test_reader_and_hub_give_the_same_answers(registry, monkeypatch):
    """One engine: hub.reader.Reader (sqlite3 where it can) and hub.service.Hub (SQLAlchemy)
    run the same reading operations; their answers are equal, field by field."""
    from hub.reader import ListFilter, Reader
    from hub.service import Hub

    for key in ("HUB_HOME", "HUB_CACHE_DIR", "HUB_DATABASE_URL"):
        if key in registry:
            monkeypatch.setenv(key, registry[key])
        else:
            monkeypatch.delenv(key, raising=False)
    with Hub() as hub:
        reader = Reader(None, None, lambda: hub)
        calls = [("get", "p"), ("get", "p@1"), ("get", "p@prod"), ("versions", "p"), ("list_bases",),
                 ("get_base", "llama"), ("list_models",), ("get_model", "m"), ("check_base_all", "llama"),
                 ("count",)]
        for name, *args in calls:
            ours, theirs = getattr(reader, name)(*args), getattr(hub, name)(*args)
            assert _plain(ours) == _plain(theirs), name
        assert _plain(reader.remote_status(None, check=False)) == _plain(hub.remote_status(None, check=False))
        for full in (False, True):
            hub.list(ListFilter(), full=full)    # compiles the shape for the fast path
            assert _plain(reader.list(ListFilter(), full=full)) == _plain(hub.list(ListFilter(), full=full))
        for bad in ("nope", "p@9", "p@nope"):
            with pytest.raises(Exception) as fast:
                reader.get(bad)
            with pytest.raises(Exception) as slow:
                hub.get(bad)
            assert (type(fast.value), str(fast.value)) == (type(slow.value), str(slow.value))


def _plain(value):
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value.to_dict() if hasattr(value, "to_dict") else value


@pytest.mark.skipif(ON_POSTGRES, reason="the fast path reads SQLite files only")
def test_repeated_list_does_not_import_sqlalchemy(registry):
    env = {**registry, "HUB_CACHE_DIR": registry["HUB_CACHE_DIR"] + "-fresh"}
    for args in (["list", "--json"], ["list", "--tag", "t"]):
        first = imported(*args, env=env)   # compiles this filter's SQL through SQLAlchemy
        again = imported(*args, env=env)
        assert "sqlalchemy" in first and "sqlalchemy" not in again, args


def test_help_does_not_open_the_registry(registry):
    assert "sqlalchemy" not in imported("--help", env=registry)


def test_a_command_imports_only_its_own_module(registry):
    modules = {m for m in _full_modules("show", "p", env=registry) if m.startswith("hub.cli.")}
    assert "hub.cli.adapters" in modules
    assert not modules & {"hub.cli.merge", "hub.cli.combine", "hub.cli.sync", "hub.cli.surgery", "hub.cli.serve"}


def _full_modules(*args, env):
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, timeout=120)
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("MODULES "))
    return set(json.loads(line[len("MODULES "):]))


def test_the_command_table_names_every_command_where_it_is_defined():
    from hub.cli import COMMANDS, cli, load_commands

    load_commands()
    assert set(cli.commands) == set(COMMANDS)
    for name, command in cli.commands.items():
        assert command.callback.__module__ == COMMANDS[name], name


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
@pytest.mark.parametrize("args, first", [
    (["merge", "--base", "llama", "p", "--out", "{tmp}/out", "--device", "cpu", "--name", "first-line"],
     "hub: merging p into llama"),
    (["combine", "p@1", "p@2", "--method", "cat", "--name", "pp", "--dry-run"], "hub: combining p@1, p@2 by cat"),
    (["resize", "p", "--rank", "2", "--dry-run"], "hub: resizing p"),
])
def test_a_torch_command_says_what_it_does_before_importing_torch(registry, tmp_path, args, first):
    """On a terminal, the first line is on stderr before torch is imported (read in order
    from one pseudo-terminal, where -X importtime writes each import as it ends)."""
    import pty

    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "hub", *args], env=registry,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:   # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=300) == 0, b"".join(chunks)[-3000:].decode(errors="replace")
    lines = b"".join(chunks).decode(errors="replace").splitlines()
    said = next(i for i, line in enumerate(lines) if line.startswith(first))
    # importtime prints a module when its import ends: the array library's first submodule ends
    # early in it (torch; or numpy, which combine's low-rank methods use on float parents)
    maths_at = next(i for i, line in enumerate(lines)
                    if line.rsplit("|", 1)[-1].strip().split(".")[0] in ("torch", "numpy"))
    assert said < maths_at, lines[max(0, said - 3):said + 3]


def test_a_merge_plan_imports_no_torch(registry, tmp_path):
    """Registry, adapters, headers and plan are pure Python (torch loads on another thread meanwhile,
    hub.merge.torch_loader): a dry run on the CPU never needs it."""
    modules = imported("merge", "--base", "llama", "p", "--out", str(tmp_path / "o"), "--device", "cpu",
                       "--dry-run", env=registry)
    assert "hub" in modules and "torch" not in modules


def test_merge_in_a_fresh_process_equals_the_in_process_merge(registry, tmp_path):
    """The CLI process imports torch on a background thread while it plans (in-process tests
    have torch loaded already): the merge it writes is byte for byte the fixture's."""
    out = tmp_path / "fresh"
    proc = subprocess.run([sys.executable, "-m", "hub", "merge", "--base", "llama", "p", "--out", str(out),
                           "--device", "cpu", "--name", "fresh", "--json"],
                          capture_output=True, text=True, env=registry, timeout=300)
    assert proc.returncode == 0, proc.stderr
    reference = Path(registry["HUB_HOME"]).parent / "m"     # the fixture's `hub merge`, in-process
    shards = sorted(p.name for p in reference.glob("*.safetensors"))
    assert shards and shards == sorted(p.name for p in out.glob("*.safetensors"))
    for name in shards:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name


def test_an_early_merge_error_in_a_fresh_process_is_one_line(registry, tmp_path):
    """An error found while torch is still importing on its thread: one line, exit 1, no traceback
    (the import is joined before the interpreter ends)."""
    proc = subprocess.run([sys.executable, "-m", "hub", "merge", "--base", "llama", "nope", "--out",
                           str(tmp_path / "o"), "--device", "cpu"],
                          capture_output=True, text=True, env=registry, timeout=300)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "nope" in proc.stderr and not (tmp_path / "o").exists()


def test_a_torch_command_says_nothing_extra_when_stderr_is_no_terminal(registry, tmp_path):
    result = run_cli("merge", "--base", "nope", "p", "--out", tmp_path / "o", env=registry)
    assert result.exit_code != 0 and len(result.stderr.strip().splitlines()) == 1
