"""`hub -v` / HUB_LOG: log lines on stderr, stdout's JSON untouched, no secrets, no handler
left behind after an in-process invocation."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys

from tests.helpers import run_cli

LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) hub(\.[\w.]+)?: \S")


def _hub(*args, **env):
    full = {**os.environ, **env}
    return subprocess.run([sys.executable, "-m", "hub", *args], capture_output=True, text=True, env=full,
                          timeout=300)


def _log_lines(stderr: str) -> list[str]:
    lines = stderr.splitlines()
    assert lines and all(LINE.match(line) for line in lines), stderr
    return lines


def test_hub_log_debug_lists_with_log_lines_and_clean_json():
    first = _hub("list", "--json", HUB_LOG="debug")     # a new registry: created, migrated, listed
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == []
    lines = _log_lines(first.stderr)
    # the registry the test session points at: SQLite under HUB_HOME, or the PostgreSQL rerun's server
    on_postgres = bool(os.environ.get("HUB_TEST_DATABASE_URL"))
    scheme = "postgresql" if on_postgres else "sqlite:///"
    assert any(f"hub.registry.db: registry database {scheme}" in line for line in lines), lines
    again = _hub("list", "--json", HUB_LOG="debug")
    assert again.returncode == 0 and json.loads(again.stdout) == []
    if not on_postgres:   # the sqlite3 fast path reads SQLite files only
        assert any("hub.registry.fastread: list:" in line for line in _log_lines(again.stderr))
    else:
        assert _log_lines(again.stderr)


def test_verbose_flag_means_debug_and_quiet_without_it(artifacts, tmp_path):
    _base, adapter = artifacts["plain"]
    added = _hub("-v", "add", str(adapter), "--name", "style", "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["adapter"]["name"] == "style"
    lines = _log_lines(added.stderr)
    assert any("DEBUG hub.inspect: inspecting" in line for line in lines)
    assert any("hub.registry.store: adapter_model.safetensors: stored as blob" in line for line in lines)
    assert any("DEBUG hub.services.adapters: add " in line and ": added as style (copied into the store)" in line
               for line in lines)
    exported = _hub("-v", "export", "style", str(tmp_path / "out"))
    assert exported.returncode == 0, exported.stderr
    assert f"hub.atomic: wrote {tmp_path / 'out'}" in exported.stderr
    verified = _hub("-v", "verify")
    assert verified.returncode == 0 and "hub.verify: verifying " in verified.stderr
    quiet = _hub("list", "--json")
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert [r["name"] for r in json.loads(quiet.stdout)] == ["style"]
    info = _hub("list", "--json", HUB_LOG="info")   # nothing at info for a plain listing
    assert info.returncode == 0 and info.stderr == ""


def test_bad_level_is_one_usage_line():
    bad = _hub("list", HUB_LOG="chatty")
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == ["hub: error: HUB_LOG='chatty' is not a log level (HUB_LOG): "
                                       "use one of: debug, info, warning, error, critical"]


def test_secrets_never_reach_the_log():
    token = "hf_" + "Zq8" * 8
    url = "postgresql://hubuser:pw-s3cret-123@127.0.0.1:9/hub"   # nothing listens on port 9
    db = _hub("--db", url, "list", HUB_LOG="debug")
    assert db.returncode != 0
    assert "pw-s3cret-123" not in db.stderr
    assert "DEBUG hub.registry.db: registry database postgresql" in db.stderr and "***@127.0.0.1:9/hub" in db.stderr
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    pull = subprocess.run([sys.executable, "-m", "hub", "-v", "pull", "org/repo"], capture_output=True, text=True,
                          timeout=300, env={**env, "HF_TOKEN": token,
                                            "HF_ENDPOINT": f"http://user:{token}@127.0.0.1:9"})
    assert pull.returncode != 0
    assert "hub.sync.remote: Hub endpoint http://127.0.0.1:9, credentials from HF_TOKEN" in pull.stderr
    assert token not in pull.stderr and token[3:] not in pull.stderr


def test_in_process_invocation_leaves_no_handler_behind():
    logger = logging.getLogger("hub")
    before, level = list(logger.handlers), logger.level
    result = run_cli("-v", "list", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []
    assert LINE.match(result.stderr.splitlines()[0]), result.stderr
    assert logger.handlers == before and logger.level == level
