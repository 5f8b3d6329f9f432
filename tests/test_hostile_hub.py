"""hub against a hostile Hub on loopback (tests/hubserver/hostile.py): silent, trickling,
garbage, wrong-shaped, redirecting, secret-echoing, control-sequence and endlessly paging
servers. Every command ends, as a real process within a generous bound, with one inert line,
the remote-failure exit code (never "internal error" 70), no secret printed, and the
registry and store unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import registry_snapshot, registry_state, run_cli
from tests.hubserver.hostile import HostileHub

REPO_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hf_tokensecret4567890"
USERINFO = "hubuser:hf_endpointsecret123"
SECRETS = (TOKEN, "hf_endpointsecret123")
DANGEROUS = ("\x1b", "\x07", "\r", "\u202e")
PROCESS_BOUND_S = 150   # generous: the bound is asserted by the process ending, not by a timing


@pytest.fixture(scope="module")
def hostile():
    server = HostileHub().start()
    yield server
    server.close()




@pytest.fixture
def seeded(artifacts, hub_home):
    assert run_cli("add", artifacts["plain"][1], "--name", "existing").exit_code == 0
    return registry_state(hub_home)


def hub_process(args, endpoint: str, hub_home: Path, tmp_path: Path, **extra_env):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN")}
    env.update(HF_ENDPOINT=endpoint, HF_TOKEN=TOKEN, HF_HOME=str(tmp_path / "hf-home"), HUB_HOME=str(hub_home),
               HF_HUB_ETAG_TIMEOUT="1", HF_HUB_DOWNLOAD_TIMEOUT="1", HUB_REMOTE_DEADLINE="8",
               HUB_PROBE_TIMEOUT="2", HF_HUB_DISABLE_XET="1",
               PYTHONPATH=os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    env.update(extra_env)
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "hub", *args], capture_output=True, env=env,
                         timeout=PROCESS_BOUND_S, cwd=tmp_path)
    return out.returncode, out.stdout.decode(), out.stderr.decode(), time.monotonic() - start


def assert_remote_failure(code, stdout, stderr, what):
    line = stderr.strip()
    assert code == 1, (what, code, stderr)
    assert "internal error" not in line and "Traceback" not in stderr, (what, stderr)
    assert line.startswith("hub: error:") and "\n" not in line, (what, stderr)
    for secret in SECRETS:
        assert secret not in stdout + stderr, (what, stderr)
    assert not any(ch in stdout + stderr for ch in DANGEROUS), (what, stderr)
    return line


COMMANDS = {
    "pull": ["pull", "org/some-lora"],
    "pull@rev": ["pull", "org/some-lora@v1.0"],
    "search": ["search-remote", "--base", "org/base"],
    "push": ["push", "existing", "org/pushed"],
}
CASES = [(mode, cmd) for mode in ("silent", "trickle", "garbage", "list", "redirect", "echo", "controls")
         for cmd in COMMANDS if cmd != "pull@rev" or mode == "silent"] + [("endless", "pull"), ("emptypages", "pull"), ("emptypages", "search"),
                                 ("badfields", "pull")]
EXPECTED = {
    "silent": ("did not answer",), "trickle": ("did not answer in bounds",),
    "garbage": ("malformed", "could not be used"), "list": ("malformed", "could not be used"),
    "redirect": ("could not be used",), "echo": ("HTTP 401",), "controls": ("HTTP 400",),
    "endless": ("more than 100,000 files",), "emptypages": ("did not answer in bounds",),
    "badfields": ("malformed fields",),
}


@pytest.mark.parametrize("mode,command", CASES, ids=[f"{m}-{c}" for m, c in CASES])
def test_hostile_hub_ends_in_one_line(hostile, seeded, hub_home, tmp_path, mode, command):
    endpoint = hostile.endpoint(mode, USERINFO if mode == "echo" else None)
    code, stdout, stderr, _ = hub_process(COMMANDS[command], endpoint, hub_home, tmp_path)
    line = assert_remote_failure(code, stdout, stderr, (mode, command))
    assert any(word in line for word in EXPECTED[mode]), (mode, command, line)
    if mode == "echo":
        assert "***" in line   # the echoed token was there, masked
    if mode == "controls":
        assert "\\x1b]0;owned" in line
    assert registry_state(hub_home) == seeded
    tmp = hub_home / "tmp"
    assert not tmp.exists() or not any(tmp.iterdir())


def test_silent_server_timeouts_follow_the_environment(hostile, seeded, hub_home, tmp_path):
    """The client's defaults (10 s connect, 30 s read) are overridden by HF_HUB_ETAG_TIMEOUT /
    HF_HUB_DOWNLOAD_TIMEOUT, also for model_info, which passes timeout=None to the client."""
    code, stdout, stderr, _ = hub_process(["pull", "org/x"], hostile.endpoint("silent"), hub_home, tmp_path)
    assert_remote_failure(code, stdout, stderr, "silent")
    assert "ReadTimeout" in stderr
    from hub.sync import http_bounds

    assert http_bounds._bounded({"connect": None, "read": None, "write": 999, "pool": None}) == {
        "connect": 10.0, "read": 30.0, "write": 30.0, "pool": 10.0}


def test_bounds_hold_in_process_too(hostile, hub_home, monkeypatch):
    """The library API (as the TUI uses it): the same bounded, translated errors."""
    from hub.errors import RemoteError
    from hub.sync.pull import snapshot
    from hub.sync.remote import Remote
    from hub.sync.spec import parse_spec

    for key, value in {"HF_HUB_ETAG_TIMEOUT": "1", "HF_HUB_DOWNLOAD_TIMEOUT": "1", "HUB_REMOTE_DEADLINE": "5",
                       "HF_TOKEN": TOKEN}.items():
        monkeypatch.setenv(key, value)
    for mode in ("silent", "trickle", "list", "redirect", "echo"):
        remote = Remote(hostile.endpoint(mode, USERINFO), TOKEN)
        with pytest.raises(RemoteError) as caught:
            snapshot(remote, parse_spec("org/x"))
        assert not any(s in str(caught.value) for s in SECRETS), str(caught.value)


def test_endpoint_credentials_are_never_stored_or_printed(artifacts, hub_server, hub_home, tmp_path):
    """HF_ENDPOINT=http://user:hf_...@host: the pull works, the record's source and every
    printed line name the endpoint without the credentials."""
    from tests.hubserver.fixture import ensure_model

    repo_id = hub_server.repo_id("creds")
    folder = artifacts["plain"][1]
    ensure_model(hub_server, repo_id, {name: (folder / name).read_bytes()
                                       for name in ("adapter_config.json", "adapter_model.safetensors")})
    host = hub_server.url.split("//", 1)[1]
    endpoint = f"http://{USERINFO}@{host}"
    code, stdout, stderr, _ = hub_process(["pull", repo_id, "--name", "pulled", "--json"], endpoint, hub_home,
                                          tmp_path, HF_TOKEN="")
    assert code == 0, stderr
    for secret in SECRETS:
        assert secret not in stdout + stderr
    code, shown, stderr, _ = hub_process(["show", "pulled", "--json"], endpoint, hub_home, tmp_path)
    assert code == 0, stderr
    source = json.loads(shown)["source"]
    assert source["path"] == f"{hub_server.url}/{repo_id}", source
    dump = json.dumps(registry_snapshot(hub_home))
    assert "hf_endpointsecret123" not in dump and "hubuser" not in dump


def test_pull_without_revision_works_through_a_mirror(artifacts, hub_server, hub_home, tmp_path):
    """olah-like mirrors refuse /api/models/ID without a revision: hub always names one."""
    from tests.hubserver.fixture import ensure_model

    repo_id = hub_server.repo_id("mirrored")
    folder = artifacts["plain"][1]
    ensure_model(hub_server, repo_id, {name: (folder / name).read_bytes()
                                       for name in ("adapter_config.json", "adapter_model.safetensors")})
    mark = hub_server.mark()
    code, stdout, stderr, _ = hub_process(["pull", repo_id, "--name", "via-mirror"], hub_server.url + "/mirror",
                                          hub_home, tmp_path, HF_TOKEN="")
    assert code == 0, stderr
    asked = [r for r in hub_server.requests(mark) if r.startswith("GET /mirror/api/models/")]
    assert asked and all("/revision/" in r or "/tree/" in r for r in asked), asked
    code, stdout, stderr, _ = hub_process(["status", "via-mirror"], hub_server.url + "/mirror", hub_home, tmp_path,
                                          HF_TOKEN="")
    assert code == 0 and "up-to-date" in stdout, stdout + stderr


def test_hub_metadata_reaches_the_terminal_inert(hostile, seeded, hub_home, tmp_path):
    """Repo ids, tags and library names from the Hub are data: printed escaped, and exactly
    (JSON-escaped) with --json."""
    endpoint = hostile.endpoint("controlmeta")
    code, stdout, stderr, _ = hub_process(["search-remote", "--base", "org/base"], endpoint, hub_home, tmp_path)
    assert code == 0, stderr
    assert not any(ch in stdout + stderr for ch in DANGEROUS), stdout
    assert "org/evil\\x1b[2J" in stdout, stdout
    code, stdout, stderr, _ = hub_process(["search-remote", "--base", "org/base", "--json"], endpoint, hub_home,
                                          tmp_path)
    assert code == 0 and stdout.isascii(), stderr
    hit = json.loads(stdout)[0]
    assert hit["repo_id"] == "org/evil\x1b[2J\x1b[H" and "\x1b]0;owned\x07" in hit["tags"]
    assert registry_state(hub_home) == seeded
