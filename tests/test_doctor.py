"""`hub doctor`: every kind of leftover is found, reported without change by default,
and repaired by --fix; user data it cannot restore is reported, never deleted."""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.helpers import copy_adapter, registry_snapshot, run_cli


def doctor(*args) -> tuple[int, dict]:
    result = run_cli("doctor", "--grace", "0", "--json", *args)
    return result.exit_code, json.loads(result.stdout)


def kinds(report: dict, key: str = "problems") -> list[str]:
    return sorted(p["kind"] for p in report[key])


@pytest.fixture()
def two(artifacts, hub_home):
    assert run_cli("add", artifacts["plain"][1], "--name", "one").exit_code == 0
    assert run_cli("add", artifacts["dora"][1], "--name", "two", "--tag", "t").exit_code == 0
    return hub_home


def blob_of(name: str, filename: str = "adapter_model.safetensors") -> str:
    rec = json.loads(run_cli("show", name, "--json").stdout)
    return next(f["sha256"] for f in rec["files"] if f["name"] == filename)


def test_a_healthy_registry_is_healthy(two):
    code, report = doctor()
    assert code == 0 and report["healthy"] and report["problems"] == []
    assert report["checked"]["adapters"] == 2 and report["checked"]["blobs"] >= 4


def test_every_leftover_is_reported_then_fixed(two, tmp_path):
    home = two
    (home / "tmp").mkdir(exist_ok=True)
    (home / "tmp" / "abc-pull.incomplete").mkdir()
    (home / "tmp" / "abc-pull.incomplete" / "adapter_model.safetensors").write_bytes(b"partial")
    (home / "tmp" / "def.incomplete").write_bytes(b"partial blob")
    orphan = home / "store" / "sha256" / "ee" / ("ee" + "0" * 62)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"an orphan")
    (home / "store" / "sha256" / "ee" / "notahash.tmp").write_bytes(b"stray")
    (home / "views" / ("f" * 64)).mkdir(parents=True)            # view of nothing registered
    before = registry_snapshot(home)

    code, report = doctor()                                      # dry run by default
    assert code == 1 and not report["healthy"]
    assert kinds(report) == ["orphan_blob", "stale_view", "stray_file", "tmp_leftover", "tmp_leftover"]
    assert all(p["fix"] for p in report["problems"])
    assert registry_snapshot(home) == before                     # reporting changes nothing

    code, report = doctor("--fix")
    assert code == 0 and report["healthy"], report
    assert kinds(report, "fixed") == kinds(report)
    assert not orphan.exists() and list((home / "tmp").iterdir()) == []
    assert run_cli("verify").exit_code == 0
    code, report = doctor()
    assert code == 0 and report["problems"] == []


def test_row_whose_blob_is_gone_is_removed_and_its_other_blobs_freed(two):
    home = two
    lost = home / "store" / "sha256" / blob_of("two")[:2] / blob_of("two")
    kept_config = blob_of("two", "adapter_config.json")
    lost.unlink()
    code, report = doctor()
    assert code == 1 and kinds(report) == ["missing_file"] and report["problems"][0]["target"] == "two"
    code, report = doctor("--fix")
    assert code == 0, report
    # the row went, then its config blob became an orphan and went in the second pass
    assert kinds(report, "fixed") == ["missing_file", "orphan_blob"]
    assert run_cli("show", "two").exit_code == 1
    assert not (home / "store" / "sha256" / kept_config[:2] / kept_config).exists()
    assert [r["name"] for r in json.loads(run_cli("list", "--json").stdout)] == ["one"]
    assert run_cli("verify").exit_code == 0


def test_broken_view_is_dropped_and_rebuilt_on_demand(two, tmp_path):
    home = two
    assert run_cli("export", "one", tmp_path / "out").exit_code == 0   # builds the view
    views = list((home / "views").iterdir())
    assert views
    view = views[0]
    victim = next(view.iterdir())
    victim.unlink()
    code, report = doctor()
    assert kinds(report) == ["stale_view"]
    assert doctor("--fix")[0] == 0 and not view.exists()
    assert run_cli("export", "one", tmp_path / "again").exit_code == 0
    assert (tmp_path / "again" / victim.name).read_bytes() == (tmp_path / "out" / victim.name).read_bytes()


def test_linked_folder_gone_is_reported_never_deleted(artifacts, hub_home, tmp_path):
    folder = copy_adapter(artifacts["gpt2"][1], tmp_path / "linked")
    assert run_cli("add", folder, "--link", "--name", "linked").exit_code == 0
    os.rename(folder, tmp_path / "moved")
    code, report = doctor("--fix")
    assert code == 1 and kinds(report, "remaining") == ["missing_link"]
    assert report["remaining"][0]["fix"] is None
    assert run_cli("show", "linked").exit_code == 0               # the row stays for the user to decide
    os.rename(tmp_path / "moved", folder)
    assert doctor()[0] == 0


def test_orphan_child_rows_are_deleted(two):
    # another tool, with foreign keys off, left rows behind
    ghost = "INSERT INTO adapter_tags (adapter_id, tag) VALUES (999, 'ghost')"
    if os.environ.get("HUB_DATABASE_URL"):               # PostgreSQL: only with triggers (FKs) disabled
        from hub.registry.db import Database

        db = Database(os.environ["HUB_DATABASE_URL"])
        with db.engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            conn.exec_driver_sql(ghost)
        db.dispose()
    else:
        import sqlite3

        conn = sqlite3.connect(two / "registry.db")
        conn.execute(ghost)
        conn.commit()
        conn.close()
    code, report = doctor()
    assert "orphan_rows" in kinds(report)
    code, report = doctor("--fix")
    assert code == 0, report
    assert doctor()[1]["problems"] == []


def test_recent_leftovers_are_left_alone_by_default(two):
    """A staging file younger than --grace may belong to a running `hub add`."""
    (two / "tmp").mkdir(exist_ok=True)
    fresh = two / "tmp" / "busy.incomplete"
    fresh.write_bytes(b"being written")
    result = run_cli("doctor", "--fix", "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == 0 and report["skipped_recent"] == 1 and fresh.exists()
    old = time.time() - 3600
    os.utime(fresh, (old, old))
    report = json.loads(run_cli("doctor", "--fix", "--json").stdout)
    assert kinds(report, "fixed") == ["tmp_leftover"] and not fresh.exists()


def test_text_output_says_what_to_run(two):
    (two / "tmp").mkdir(exist_ok=True)
    (two / "tmp" / "x.incomplete").write_bytes(b"x")
    result = run_cli("doctor", "--grace", "0")
    assert result.exit_code == 1
    assert "would fix" in result.stdout and "tmp_leftover" in result.stdout
    assert "hub doctor --fix" in result.stderr


def test_verify_rehashes_and_finds_nonfinite_values(artifacts, hub_home, tmp_path):
    """`hub verify` is the deep check doctor is not: every byte re-hashed, every tensor
    scanned for NaN/Inf (torch as the reader of the values)."""
    import torch
    from safetensors.torch import load_file, save_file

    inf = copy_adapter(artifacts["plain"][1], tmp_path / "inf")
    tensors = load_file(inf / "adapter_model.safetensors")
    key = sorted(tensors)[-1]
    tensors[key] = tensors[key].to(torch.bfloat16)
    tensors[key][0, 0] = float("inf")
    save_file(tensors, inf / "adapter_model.safetensors")
    assert run_cli("add", inf, "--name", "inf").exit_code == 1                     # refused by default
    assert run_cli("add", inf, "--name", "inf", "--allow-nonfinite").exit_code == 0
    assert run_cli("add", artifacts["dora"][1], "--name", "fine").exit_code == 0
    assert run_cli("add", artifacts["gpt2"][1], "--name", "tampered").exit_code == 0

    blob = hub_home / "store" / "sha256" / blob_of("tampered")[:2] / blob_of("tampered")
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF                                     # same size, one bit pattern changed
    os.chmod(blob, 0o644)
    blob.write_bytes(bytes(data))

    result = run_cli("verify", "--json")
    assert result.exit_code == 1
    report = {r["name"]: r for r in json.loads(result.stdout)}
    assert report["fine"]["ok"] and report["fine"]["problems"] == []
    assert not report["inf"]["ok"] and "0 NaN and 1 Inf" in report["inf"]["problems"][0]
    assert key in report["inf"]["problems"][0]
    assert not report["tampered"]["ok"] and "sha256 differs" in report["tampered"]["problems"][0]
    # doctor checks sizes, not contents: a same-size corruption is verify's to find
    assert doctor()[0] == 0
    assert run_cli("verify", "fine").exit_code == 0
