"""`hub serve` under load: 32 concurrent huggingface_hub clients download different versions
of an 8 MB adapter; every file is byte-equal to the registered one and the server's peak
memory grows by far less than what it sent (it streams; it does not hold files in memory).
Throughput against a plain static file server is in benchmarks/serve/ (timings are not
asserted in tests)."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.hubserver.fixture import point_client_at
from tests.serving import start_serve

CLIENTS = 32
VERSIONS = 4
BIG = dict(r=128, lora_alpha=128, target_modules="all-linear")
WIDE = dict(hidden_size=512, intermediate_size=1024)


def test_32_concurrent_clients_get_their_versions_byte_equal_with_flat_memory(artifacts, tmp_path, monkeypatch):
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import _http

    from hub.service import Hub

    home = tmp_path / "home"
    folders = [artifacts.adapter("llama", f"big{i}", seed=60 + i, base_overrides=WIDE, **BIG) for i in range(VERSIONS)]
    with Hub(home=home, db_url=f"sqlite:///{home / 'registry.db'}") as hub:
        for folder in folders:
            hub.add(folder, name="big", new_version=True)
        hub.alias("big", "prod", 2)
        expected = {v.version: v for v in hub.versions("big")}
        weights = {n: next(f["sha256"] for f in hub.get(f"big@{n}").files if f["name"] == "adapter_model.safetensors")
                   for n in expected}
    size = (folders[0] / "adapter_model.safetensors").stat().st_size
    assert size > 6_000_000

    server = start_serve(home, "--quiet", log=tmp_path / "serve.log")
    try:
        point_client_at(monkeypatch, server.url, {"HF_ENDPOINT": server.url, "HF_HUB_DISABLE_XET": "1"},
                        tmp_path / "hf")
        # warm up (imports, first queries), then measure the peak from here
        hf_hub_download("local/big", "adapter_config.json", revision="v1", cache_dir=tmp_path / "warm")
        before = server.rss_peak_kb()

        revisions = []
        for i in range(CLIENTS):
            n = i % VERSIONS + 1
            rev = [f"v{n}", expected[n].commit, "main" if n == VERSIONS else f"v{n}",
                   "prod" if n == 2 else str(n)][i // VERSIONS % 4]
            revisions.append((rev, n))

        def download(job):
            i, (rev, n) = job
            path = hf_hub_download("local/big", "adapter_model.safetensors", revision=rev,
                                   cache_dir=tmp_path / f"client-{i}")
            digest = hashlib.sha256()
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
            return n, digest.hexdigest()

        with ThreadPoolExecutor(CLIENTS) as pool:
            results = list(pool.map(download, enumerate(revisions)))
        after = server.rss_peak_kb()
    finally:
        _http.close_session()
        server.stop()

    assert [n for n, _ in results] == [n for _, n in revisions]
    assert all(digest == weights[n] for n, digest in results)
    served_mb = CLIENTS * size / 2**20
    grown_mb = (after - before) / 1024
    # 32 x 8 MB went out; streaming in 1 MB chunks keeps the peak within a few MB per client
    assert grown_mb < min(96, served_mb / 2), (grown_mb, served_mb)
    assert len(list(Path(tmp_path).glob("client-*"))) == CLIENTS
