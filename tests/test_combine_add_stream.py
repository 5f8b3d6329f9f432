"""`hub combine` registers its result while writing it (hub.services.adapters' add_stream): the
store holds exactly the bytes that were hashed, the same file ``Combination.write`` writes; the
checks of `hub add` hold (NaN/Inf refused with one line); and a failure while writing leaves the
registry, the store and HUB_HOME/tmp as they were."""

from __future__ import annotations

import errno
import hashlib
from pathlib import Path

import pytest
import test_combine_lowrank
from safetensors.torch import load_file, save_file

from hub.errors import DiskFull
from hub.formats.safetensors_header import ADAPTER, read_header
from tests.helpers import cli_json, copy_adapter, registry_snapshot, run_cli

trio = test_combine_lowrank.trio   # three PEFT adapters (a fixture)


def durable(snapshot: dict) -> dict:
    """Registry and store without views/ (hard-link read caches any read may build)."""
    return {**snapshot, "files": {k: v for k, v in snapshot["files"].items() if not k.startswith("views/")}}


def leftovers(home: Path) -> list[Path]:
    return sorted(p for p in (home / "tmp").rglob("*")) if (home / "tmp").exists() else []


@pytest.fixture()
def registered(trio, hub_home):
    base, parents = trio
    for i, (folder, _) in enumerate(parents):
        assert run_cli("add", folder, "--name", f"p{i}").exit_code == 0
    return base, [(f"p{i}", w) for i, (_, w) in enumerate(parents)]


def test_the_stored_result_is_what_was_hashed_and_what_write_writes(registered, hub_home, tmp_path):
    from hub.service import Hub

    _, weights = registered
    out = cli_json("combine", *(f"{n}:{w}" for n, w in weights), "--method", "svd", "--rank", "5", "--name", "mix")
    record = cli_json("show", "mix")
    assert record["sha256"] == out["sha256"]
    stored = {}
    for f in record["files"]:
        blob = hub_home / "store" / "sha256" / f["sha256"][:2] / f["sha256"]
        stored[f["name"]] = blob.read_bytes()
        assert hashlib.sha256(stored[f["name"]]).hexdigest() == f["sha256"] and len(stored[f["name"]]) == f["size"]
    assert run_cli("verify", "mix").exit_code == 0
    assert not leftovers(hub_home)

    # the same combination computed again and written as a folder: the same two files, byte for byte
    weights_sha = next(f["sha256"] for f in record["files"] if f["name"] == "adapter_model.safetensors")
    recipe_json = read_header(hub_home / "store" / "sha256" / weights_sha[:2] / weights_sha,
                              ADAPTER).metadata["hub_recipe"]
    with Hub(home=hub_home) as hub:
        dry = hub.combine(weights, "svd", "again", {"rank": 5}, dry_run=True)
    folder = dry.computed[1].write(tmp_path / "again", recipe_json=recipe_json)
    for name, data in stored.items():
        assert (folder / name).read_bytes() == data, name


def test_a_result_holding_nan_is_refused_and_nothing_is_left(artifacts, registered, hub_home, tmp_path):
    _, plain = artifacts["plain"]
    broken = copy_adapter(plain, tmp_path / "nan")
    tensors = load_file(broken / "adapter_model.safetensors")
    key = sorted(k for k in tensors if "lora_B" in k)[0]
    tensors[key][0, 0] = float("nan")
    save_file(tensors, broken / "adapter_model.safetensors")
    assert run_cli("add", broken, "--name", "nan", "--allow-nonfinite").exit_code == 0
    before = registry_snapshot(hub_home)

    result = run_cli("combine", "nan:1", "p0:1", "--method", "cat", "--name", "bad")
    assert result.exit_code == 1 and "NaN" in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert durable(registry_snapshot(hub_home)) == durable(before)
    assert not leftovers(hub_home)


def test_a_failure_while_writing_leaves_everything_as_it_was(registered, hub_home, monkeypatch):
    """The disk fills up after the weights' header: one DiskFull line, no row, no blob, nothing in tmp."""
    import hub.registry.store as store
    from hub.service import Hub

    _, weights = registered
    before = registry_snapshot(hub_home)
    writes = []

    class Filling:   # the store's staging file, on a disk that is full after the first write
        def __init__(self, path, mode):
            self.fh = open(path, mode)

        def write(self, chunk):
            writes.append(len(chunk))
            if len(writes) > 2:   # the config, then the weights' header, then no space
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.fh.write(chunk)

        def close(self):
            self.fh.close()

    monkeypatch.setattr(store, "open", Filling, raising=False)
    with Hub(home=hub_home) as hub, pytest.raises(DiskFull):
        hub.combine(weights, "svd", "full", {"rank": 5})
    assert len(writes) == 3
    assert durable(registry_snapshot(hub_home)) == durable(before)
    assert not leftovers(hub_home)
