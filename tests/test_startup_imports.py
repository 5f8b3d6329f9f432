"""Reading commands start fast: they never import torch, transformers or peft (1.5 s and
4.5 s of imports), and a repeated `hub list` does not import SQLAlchemy either
(hub.registry.fastread). Each command runs in a fresh interpreter that reports
sys.modules at exit; speed itself is measured in benchmarks/startup, not here."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import run_cli

HEAVY = ("torch", "transformers", "peft")
PROBE = """
import atexit, json, sys
atexit.register(lambda: print("\\nMODULES " + json.dumps(sorted(sys.modules)), file=sys.stderr))
sys.argv = ["hub", *sys.argv[1:]]
from hub.cli import main
main()
"""


def imported(*args: str, env: dict) -> set[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("MODULES "))
    return {m.split(".")[0] for m in json.loads(line[len("MODULES "):])}


@pytest.fixture()
def env(artifacts, hub_home, tmp_path):
    assert run_cli("add", artifacts["plain"][1], "--name", "p", "--tag", "t").exit_code == 0
    return {**os.environ, "HUB_HOME": str(hub_home), "HUB_CACHE_DIR": str(tmp_path / "sql-cache")}


@pytest.mark.parametrize("args", [["--help"], ["list"], ["list", "--json"], ["show", "p"], ["show", "p", "--json"],
                                  ["list", "--rank", "8", "--target", "q_proj", "--limit", "50"]])
def test_reading_commands_do_not_import_torch_transformers_or_peft(env, args):
    modules = imported(*args, env=env)
    assert not modules & set(HEAVY), f"`hub {' '.join(args)}` imported {sorted(modules & set(HEAVY))}"


def test_help_does_not_open_the_registry(env):
    assert "sqlalchemy" not in imported("--help", env=env)


@pytest.mark.skipif(bool(os.environ.get("HUB_TEST_DATABASE_URL")), reason="the fast path reads SQLite files only")
def test_repeated_list_does_not_import_sqlalchemy(env):
    for args in (["list", "--json"], ["list", "--tag", "t"]):
        first = imported(*args, env=env)   # compiles this filter's SQL through SQLAlchemy
        again = imported(*args, env=env)
        assert "sqlalchemy" in first and "sqlalchemy" not in again, args
