"""Pytest fixtures: start the fake Hub once per session as its own process, and
point the real huggingface_hub client at it.

``hub_server``  the running server (url, on-disk store, request log, env for subprocesses).
``hub_online``  this test process talks to the server: HF_ENDPOINT/HF_TOKEN set, offline mode
                off, a private HF cache. huggingface_hub freezes env vars into ``constants``
                at import, so the constants it reads at call time are patched as well.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .storage import RepoStore

REPO_ROOT = Path(__file__).resolve().parents[2]

# token -> account; alice is also a member of the "acme" and "tiny-org" organisations
USERS = {
    "hf_alice_token": {"name": "alice", "orgs": ["acme", "tiny-org"]},
    "hf_bob_token": {"name": "bob", "orgs": []},
}
PAGE_SIZE = 3  # small pages, so that every listing exercises the client's Link pagination


@dataclass
class HubServer:
    url: str
    cdn: str
    root: Path
    process: subprocess.Popen
    store: RepoStore = field(init=False)
    token: str = "hf_alice_token"
    user: str = "alice"

    def __post_init__(self):
        self.store = RepoStore(self.root)

    def repo_id(self, prefix: str = "adapter", namespace: str | None = None) -> str:
        """A fresh repo id, unique in this session."""
        return f"{namespace or self.user}/{prefix}-{uuid.uuid4().hex[:8]}"

    def env(self, token: str | None = "hf_alice_token", hf_home: str | os.PathLike | None = None) -> dict:
        """Environment for a subprocess whose huggingface_hub should talk to this server."""
        env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN")}
        env.update(HF_ENDPOINT=self.url, HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_TELEMETRY="1")
        if token:
            env["HF_TOKEN"] = token
        if hf_home:
            env["HF_HOME"] = str(hf_home)
        return env

    def requests(self, since: int = 0) -> list[str]:
        """Request log lines ("METHOD PATH STATUS"), from line ``since`` on."""
        log = self.root / "requests.log"
        return log.read_text().splitlines()[since:] if log.exists() else []

    def mark(self) -> int:
        return len(self.requests())


def start_server(root: Path) -> HubServer:
    config = json.dumps({"users": USERS, "page_size": PAGE_SIZE})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-m", "tests.hubserver", "--root", str(root), "--config", config],
                               stdout=subprocess.PIPE, env=env, text=True, cwd=REPO_ROOT)
    line = process.stdout.readline()  # the server prints its address once it listens
    if not line:
        process.kill()
        raise RuntimeError("fake Hub server did not start; run `python -m tests.hubserver --root /tmp/x` to see why")
    info = json.loads(line)
    return HubServer(info["url"], info["cdn"], root, process)


@pytest.fixture(scope="session")
def hub_server(tmp_path_factory) -> HubServer:
    server = start_server(tmp_path_factory.mktemp("fakehub"))
    yield server
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture
def hub_online(hub_server, monkeypatch, tmp_path) -> HubServer:
    from huggingface_hub.utils import _http

    point_client_at(monkeypatch, hub_server.url, hub_server.env(hf_home=tmp_path / "hf-home"), tmp_path / "hf-home")
    yield hub_server
    _http.close_session()


def point_client_at(monkeypatch, url: str, env: dict, hf_home: Path) -> None:
    """This process's huggingface_hub talks to ``url`` (online, private cache, ``env`` set)."""
    from huggingface_hub import constants, hf_api

    for key, value in env.items():
        if os.environ.get(key) != value:
            monkeypatch.setenv(key, value)
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", *(["HF_TOKEN"] if "HF_TOKEN" not in env else [])):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HOME", str(hf_home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(hf_home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(hf_home / "stored_tokens"))
    # module-level helpers (file_exists, used by PEFT) share one HfApi made at import
    monkeypatch.setattr(hf_api.api, "endpoint", url)


def ensure_model(server: HubServer, repo_id: str, files: dict[str, bytes] | None = None) -> str:
    """Make sure a model repo exists on the fake Hub (e.g. a base model that cards point to)."""
    if not server.store.exists(repo_id):
        server.store.create_repo(repo_id, False, repo_id.split("/")[0])
        if files:
            server.store.raw_commit(repo_id, files)
    return repo_id
