"""`hub serve` read by the real clients: huggingface_hub (snapshot_download, hf_hub_download,
model_info, list_repo_refs, list_models), PEFT's from_pretrained and `hub pull` in another
HUB_HOME, against the command started as a process on a free loopback port."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hubserver.fixture import point_client_at
from tests.serving import REPO_ROOT, CuttingProxy, start_serve

LORA = dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _open_hub(home: Path):
    from hub.service import Hub

    return Hub(home=home, db_url=f"sqlite:///{home / 'registry.db'}")


@pytest.fixture(scope="module")
def registry(tmp_path_factory, artifacts):
    """style v1..v3 (prod -> 1, canary -> 2), team/other, and a linked adapter `linked`."""
    home = tmp_path_factory.mktemp("served-home")
    folders = [artifacts.adapter("llama", f"ver{i}", seed=20 + i, **LORA) for i in range(3)]
    with _open_hub(home) as hub:
        hub.add(folders[0], name="style")
        for folder in folders[1:]:
            hub.add(folder, name="style", new_version=True)
        hub.alias("style", "prod", 1)
        hub.alias("style", "canary", 2)
        hub.add(artifacts["rslora"][1], name="team/other")
        linked = tmp_path_factory.mktemp("linked") / "adapter"
        import shutil

        shutil.copytree(artifacts.adapter("llama", "linkme", seed=40, **LORA), linked)
        hub.add(linked, name="linked", link=True)
        files = {ref: {f["name"]: f["sha256"] for f in hub.get(ref).files}
                 for ref in ("style@1", "style@2", "style@3", "team/other", "linked")}
    return home, files, folders, linked


@pytest.fixture(scope="module")
def served(registry, tmp_path_factory):
    home = registry[0]
    server = start_serve(home, log=tmp_path_factory.mktemp("serve-log") / "serve.log")
    yield server
    server.stop()


@pytest.fixture
def client(served, monkeypatch, tmp_path):
    """This process's huggingface_hub reads the served registry (HF_HUB_OFFLINE unset)."""
    from huggingface_hub.utils import _http

    env = {"HF_ENDPOINT": served.url, "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(tmp_path / "hf")}
    point_client_at(monkeypatch, served.url, env, tmp_path / "hf")
    yield served
    _http.close_session()


def _assert_files(folder: Path, expected: dict[str, str]) -> None:
    got = {p.name: _sha(p) for p in Path(folder).iterdir() if p.is_file()}
    assert got == expected


# -- huggingface_hub ------------------------------------------------------------------------------

def test_snapshot_and_file_downloads_are_the_registered_bytes(client, registry, tmp_path):
    from huggingface_hub import hf_hub_download, snapshot_download

    _, files, _, _ = registry
    _assert_files(snapshot_download("local/style", local_dir=tmp_path / "latest"), files["style@3"])
    _assert_files(snapshot_download("local/style", revision="v1", local_dir=tmp_path / "v1"), files["style@1"])
    _assert_files(snapshot_download("local/style", revision="canary", local_dir=tmp_path / "canary"),
                  files["style@2"])
    _assert_files(snapshot_download("team/other", local_dir=tmp_path / "other"), files["team/other"])
    for rev, ref in (("prod", "style@1"), ("main", "style@3"), ("v2", "style@2")):
        path = hf_hub_download("local/style", "adapter_model.safetensors", revision=rev)   # the HF cache
        assert _sha(path) == files[ref]["adapter_model.safetensors"]


def test_model_info_refs_and_list_models(client, registry):
    from huggingface_hub import HfApi

    from hub.refs import version_commit

    api = HfApi()
    with _open_hub(registry[0]) as hub:
        commits = {v.version: version_commit(v.sha256) for v in hub.versions("style")}
        base_model = hub.get("style").base_model
    assert api.model_info("local/style").sha == commits[3]
    assert api.model_info("local/style", revision="prod").sha == commits[1]
    assert api.model_info("local/style", revision=commits[2]).sha == commits[2]
    assert api.model_info("local/style", expand=["sha"]).sha == commits[3]
    info = api.model_info("local/style", revision="v1", files_metadata=True)
    weights = next(s for s in info.siblings if s.rfilename == "adapter_model.safetensors")
    assert weights.lfs.sha256 == registry[1]["style@1"]["adapter_model.safetensors"]

    refs = api.list_repo_refs("local/style")
    assert {b.name: b.target_commit for b in refs.branches} == {"main": commits[3], "prod": commits[1],
                                                                "canary": commits[2]}
    assert {t.name: t.target_commit for t in refs.tags} == {f"v{n}": c for n, c in commits.items()}

    assert sorted(m.id for m in api.list_models()) == ["local/linked", "local/style", "team/other"]
    assert [m.id for m in api.list_models(search="sty")] == ["local/style"]
    assert "local/style" in [m.id for m in api.list_models(filter=f"base_model:{base_model}")]
    assert [m.id for m in api.list_models(filter="base_model:no/such-base")] == []
    entries = {e.path: e for e in api.list_repo_tree("local/style", revision="v2")}
    assert entries["adapter_model.safetensors"].lfs.sha256 == registry[1]["style@2"]["adapter_model.safetensors"]
    paths = api.get_paths_info("local/style", ["adapter_config.json", "nope.bin"], revision="prod")
    assert [p.path for p in paths] == ["adapter_config.json"]


def test_missing_repo_revision_and_file_raise_the_clients_exceptions(client):
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    with pytest.raises(RepositoryNotFoundError):
        HfApi().model_info("local/nothing-here")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("local/nothing-here", "adapter_config.json")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("local/style", "adapter_config.json", revision="v9")
    with pytest.raises(RevisionNotFoundError):
        HfApi().model_info("local/style", revision="no-such-alias")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("local/style", "pytorch_model.bin")


def _raw(url: str, method: str, path: str, headers: dict | None = None):
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest(method, path, skip_accept_encoding=True)   # the path goes out exactly as written
    for key, value in (headers or {}).items():
        conn.putheader(key, value)
    conn.endheaders()
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, body, response.headers


TRAVERSALS = [
    "/local/style/resolve/main/../../../../etc/passwd",
    "/local/style/resolve/main/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/local/style/resolve/main/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/local/style/resolve/main/%252e%252e%252fetc%252fpasswd",
    "/local/style/resolve/main/..\\..\\registry.db",
    "/local/style/resolve/main/%2Fetc%2Fpasswd",
    "/local/style/resolve/main//etc/passwd",
    "/local/style/resolve/main/adapter_config.json%00.png",
    "/local/style/resolve/main/./adapter_config.json/../../registry.db",
    "/local/style/resolve/main/registry.db",
    "/local/style/resolve/main/store",
    "/local/..%2F..%2F/resolve/main/adapter_config.json",
    "/local/%2e%2e/resolve/main/adapter_config.json",
    "/../../etc/passwd",
    "/api/models/local/..%2F..%2Fetc",
    "/api/models/local/style/tree/main/..%2F..",
    "/local/style/resolve/..%2F..%2F..%2F..%2Fetc%2Fpasswd/adapter_config.json",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_attempts_return_no_file(served, registry, path):
    status, body, _ = _raw(served.url, "GET", path)
    assert status in (400, 404), (path, status)
    assert b"root:" not in body and b"SQLite format" not in body and b"safetensors" not in body.lower()
    blob = Path("/etc/passwd").read_bytes()[:32]
    assert blob not in body


def test_range_requests_and_head(served, registry):
    weights = registry[1]["style@1"]["adapter_model.safetensors"]
    status, body, head = _raw(served.url, "HEAD", "/local/style/resolve/prod/adapter_model.safetensors")
    assert status == 200 and body == b""
    assert head["X-Linked-Etag"] == f'"{weights}"' and head["ETag"] == f'"{weights}"'
    size = int(head["Content-Length"])
    status, full, _ = _raw(served.url, "GET", "/local/style/resolve/prod/adapter_model.safetensors")
    assert status == 200 and hashlib.sha256(full).hexdigest() == weights and len(full) == size
    status, part, head = _raw(served.url, "GET", "/local/style/resolve/prod/adapter_model.safetensors",
                              {"Range": "bytes=100-"})
    assert status == 206 and part == full[100:] and head["Content-Range"] == f"bytes 100-{size - 1}/{size}"
    status, part, _ = _raw(served.url, "GET", "/local/style/resolve/prod/adapter_model.safetensors",
                           {"Range": "bytes=-10"})
    assert status == 206 and part == full[-10:]
    status, _, head = _raw(served.url, "GET", "/local/style/resolve/prod/adapter_model.safetensors",
                           {"Range": f"bytes={size}-"})
    assert status == 416 and head["Content-Range"] == f"bytes */{size}"
    assert _raw(served.url, "GET", "/health")[0] == 200
    assert served.logged(lambda line: '"GET /local/style/resolve/prod/adapter_model.safetensors" 206' in line)


def test_an_interrupted_download_resumes_with_range(registry, served, monkeypatch, tmp_path):
    """A proxy drops the connection halfway through the weights; huggingface_hub retries
    with a Range request, and the file it keeps equals the registered one."""
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.utils import _http

    proxy = CuttingProxy(served.url, b"adapter_model.safetensors", after=3000)
    try:
        point_client_at(monkeypatch, proxy.url, {"HF_ENDPOINT": proxy.url, "HF_HUB_DISABLE_XET": "1"},
                        tmp_path / "hf")
        # the client writes (and so resumes from) whole chunks of 10 MB; the test file is 8 KB
        monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 1024)
        path = hf_hub_download("local/style", "adapter_model.safetensors", revision="canary")
    finally:
        proxy.close()
        _http.close_session()
    assert proxy.cut_done.is_set()
    assert _sha(path) == registry[1]["style@2"]["adapter_model.safetensors"]
    resumed = served.logged(lambda line: "resolve/canary/adapter_model.safetensors" in line and '" 206 ' in line
                            and "range=bytes=" in line)
    assert resumed, served.access_log()[-5:]


# -- PEFT, hub pull --------------------------------------------------------------------------------

def test_peft_loads_an_alias_from_the_registry(client, registry, artifacts):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(artifacts.base("llama"))
    model = PeftModel.from_pretrained(base, "local/style", revision="prod")
    expected = load_file(registry[2][0] / "adapter_model.safetensors")   # version 1 = prod
    state = {k: v for k, v in model.state_dict().items() if "lora_" in k}
    assert len(state) == len(expected)
    for key, value in expected.items():
        loaded = key.replace(".lora_A.weight", ".lora_A.default.weight").replace(".lora_B.weight",
                                                                                 ".lora_B.default.weight")
        assert torch.equal(state[loaded], value), key


def test_hub_pull_replicates_a_version_into_another_home(served, registry, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HUB_DATABASE_URL", "HF_TOKEN")}
    env.update(HF_ENDPOINT=served.url, HF_HUB_DISABLE_XET="1", HF_HOME=str(tmp_path / "hf"),
               HUB_HOME=str(tmp_path / "other-home"),
               PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))

    def hub(*args):
        result = subprocess.run([sys.executable, "-m", "hub", *args], env=env, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, result.stderr
        return result.stdout

    hub("pull", "local/style@prod", "--name", "style")
    hub("pull", "local/style@v3", "--name", "style", "--new-version")
    versions = json.loads(hub("versions", "style", "--json"))
    with _open_hub(registry[0]) as source:
        want = [source.get("style@1").sha256, source.get("style@3").sha256]
    assert [v["sha256"] for v in versions] == want
    assert versions[0]["source"]["repo"] == "local/style"


# -- start-up, tokens, linked adapters -----------------------------------------------------------

def test_namespace_clash_stops_the_server(artifacts, tmp_path):
    home = tmp_path / "clash"
    with _open_hub(home) as hub:
        hub.add(artifacts.adapter("llama", "ver0", seed=20, **LORA), name="x")
        hub.add(artifacts.adapter("llama", "ver1", seed=21, **LORA), name="local/x")
    server = start_serve(home, log=tmp_path / "log", wait=False)
    assert server.process.wait(timeout=60) == 2
    text = server.log.read_text()
    assert "'x' and 'local/x' would both be the repo 'local/x'" in text and "Traceback" not in text


def test_tokens_are_enforced(registry, tmp_path, monkeypatch):
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError
    from huggingface_hub.utils import _http

    tokens = tmp_path / "tokens"
    tokens.write_text("# team tokens\nsecret-token-1234\n")
    server = start_serve(registry[0], "--token-file", str(tokens), log=tmp_path / "log")
    try:
        base_env = {"HF_ENDPOINT": server.url, "HF_HUB_DISABLE_XET": "1"}
        point_client_at(monkeypatch, server.url, base_env, tmp_path / "hf")
        with pytest.raises(HfHubHTTPError) as refused:
            HfApi().model_info("local/style")
        assert refused.value.response.status_code == 401
        with pytest.raises(HfHubHTTPError) as wrong:
            HfApi(token="wrong-token-0000").model_info("local/style")
        assert wrong.value.response.status_code == 401
        assert _raw(server.url, "GET", "/local/style/resolve/main/adapter_config.json")[0] == 401
        assert _raw(server.url, "GET", "/health")[0] == 200
        _http.close_session()
        point_client_at(monkeypatch, server.url, {**base_env, "HF_TOKEN": "secret-token-1234"}, tmp_path / "hf2")
        path = hf_hub_download("local/style", "adapter_config.json", revision="v2")
        assert _sha(path) == registry[1]["style@2"]["adapter_config.json"]
    finally:
        _http.close_session()
        server.stop()
    assert "secret-token-1234" not in server.log.read_text()


def test_a_wider_host_without_token_warns(registry, tmp_path):
    server = start_serve(registry[0], "--host", "0.0.0.0", log=tmp_path / "log")
    try:
        assert "without --token-file" in server.log.read_text()
    finally:
        server.stop()


def test_linked_adapters_are_served_only_as_registered(client, registry, tmp_path):
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    _, files, _, linked = registry
    path = hf_hub_download("local/linked", "adapter_model.safetensors", local_dir=tmp_path / "ok")
    assert _sha(path) == files["linked"]["adapter_model.safetensors"]
    config = linked / "adapter_config.json"
    original = config.read_bytes()
    try:
        # same size, other bytes: refused, nothing sent
        config.write_bytes(original.replace(b'"r": 4', b'"r": 5'))
        status, body, _ = _raw(client.url, "GET", "/local/linked/resolve/main/adapter_config.json")
        assert status == 409 and b"lora_alpha" not in body
        # a symbolic link in its place: never followed
        config.unlink()
        config.symlink_to("/etc/passwd")
        status, body, _ = _raw(client.url, "GET", "/local/linked/resolve/main/adapter_config.json")
        assert status in (404, 409) and b"root:" not in body
        with pytest.raises((HfHubHTTPError, LocalEntryNotFoundError)):   # the client's own, no retries
            hf_hub_download("local/linked", "adapter_config.json", local_dir=tmp_path / "bad")
        assert not (tmp_path / "bad" / "adapter_config.json").exists()
    finally:
        config.unlink(missing_ok=True)
        config.write_bytes(original)


def test_main_alias_is_what_a_download_without_revision_gets(registry, tmp_path, monkeypatch):
    """`hub serve --main prod`: vLLM's --lora-modules downloads without a revision and gets prod;
    a name without that alias has no main (never an unreleased latest)."""
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import RevisionNotFoundError
    from huggingface_hub.utils import _http

    server = start_serve(registry[0], "--main", "prod", log=tmp_path / "log")
    try:
        point_client_at(monkeypatch, server.url, {"HF_ENDPOINT": server.url, "HF_HUB_DISABLE_XET": "1"},
                        tmp_path / "hf")
        path = hf_hub_download("local/style", "adapter_model.safetensors")
        assert _sha(path) == registry[1]["style@1"]["adapter_model.safetensors"]
        assert HfApi().model_info("local/style").sha == HfApi().model_info("local/style", revision="v1").sha
        assert _sha(hf_hub_download("local/style", "adapter_model.safetensors", revision="v3")) == \
            registry[1]["style@3"]["adapter_model.safetensors"]
        with pytest.raises(RevisionNotFoundError):
            hf_hub_download("team/other", "adapter_config.json")
        assert [m.id for m in HfApi().list_models()] == ["local/style"]
    finally:
        _http.close_session()
        server.stop()
    assert "main = prod" in server.log.read_text()
