"""The trash: `hub rm` moves an adapter there with everything it had (tags, lineage, remotes),
`hub trash restore` brings it back byte for byte, `hub trash empty` frees its store files,
and `hub doctor` keeps them while the entry is within HUB_TRASH_DAYS and empties it after."""

from __future__ import annotations

import json

from sqlalchemy import update

from hub.registry.schema import trash
from hub.service import Hub
from tests.helpers import cli_json, registry_snapshot, run_cli


def _store_files(home):
    return sorted(p for p in (home / "store" / "sha256").rglob("*") if p.is_file())


def test_rm_then_restore_gives_back_the_same_adapter(artifacts, hub_home):
    assert run_cli("add", artifacts["plain"][1], "--name", "p", "--tag", "keep").exit_code == 0
    assert run_cli("add", artifacts["rslora"][1], "--name", "q").exit_code == 0
    assert run_cli("combine", "p:1", "q:0.5", "--method", "cat", "--name", "child").exit_code == 0
    before = cli_json("show", "p")
    snap = registry_snapshot(hub_home)
    files = _store_files(hub_home)

    dry = json.loads(run_cli("rm", "p", "--dry-run", "--json").stdout)
    assert dry["plans"][0]["dependents"] == [["adapter", "child"]]       # named before anything happens
    out = run_cli("rm", "p", "-y")
    assert out.exit_code == 0 and "made from it: adapter child" in out.stdout
    assert "p" not in [r["name"] for r in cli_json("list")]
    assert _store_files(hub_home) == files                                # nothing freed yet
    assert cli_json("show", "child")["lineage"][0]["present"] is False
    # doctor: the trashed adapter's files are in use, not orphans
    assert cli_json("doctor")["healthy"] is True

    assert run_cli("trash", "restore", "p").exit_code == 0
    after = cli_json("show", "p")
    for key in ("sha256", "tags", "modules", "r", "lora_alpha", "target_modules", "created_at"):
        assert after[key] == before[key], key
    assert cli_json("show", "child")["lineage"][0]["present"] is True    # relinked
    assert cli_json("trash", "list") == []
    assert run_cli("verify", "p").exit_code == 0
    def stored(s):   # views are rebuilt on demand; the store itself must be as it was
        return {k: v for k, v in s["files"].items() if k.startswith("store/")}

    assert stored(registry_snapshot(hub_home)) == stored(snap)


def test_restore_into_a_taken_name_adds_a_version_or_takes_another_name(artifacts, hub_home):
    assert run_cli("add", artifacts["plain"][1], "--name", "x").exit_code == 0
    assert run_cli("add", artifacts["dora"][1], "--name", "y").exit_code == 0
    plain_sha = cli_json("show", "x")["sha256"]
    assert run_cli("rm", "x", "y", "-y").exit_code == 0
    assert run_cli("add", artifacts["rslora"][1], "--name", "x").exit_code == 0
    assert run_cli("trash", "restore", "x").exit_code == 0          # the name lives on: it comes back as x@2
    assert cli_json("show", "x@2")["sha256"] == plain_sha
    assert run_cli("trash", "restore", "y", "--as", "x").exit_code != 0   # --as wants a free name
    assert run_cli("trash", "restore", "y", "--as", "y-old").exit_code == 0
    assert {r["name"] for r in cli_json("list")} == {"x", "y-old"}


def test_empty_frees_files_only_when_nothing_else_uses_them(artifacts, hub_home):
    assert run_cli("add", artifacts["plain"][1], "--name", "a").exit_code == 0
    files = _store_files(hub_home)
    assert run_cli("rm", "a", "-y").exit_code == 0
    assert run_cli("trash", "empty", "--dry-run").exit_code == 0
    assert _store_files(hub_home) == files
    gone = json.loads(run_cli("trash", "empty", "-y", "--json").stdout)
    assert gone["blobs_deleted"] == len(files) and _store_files(hub_home) == []
    missing = run_cli("trash", "restore", "a")
    assert missing.exit_code != 0 and "nothing in the trash called 'a'" in missing.stderr


def test_doctor_respects_the_retention_period(artifacts, hub_home, monkeypatch):
    assert run_cli("add", artifacts["plain"][1], "--name", "old").exit_code == 0
    assert run_cli("add", artifacts["dora"][1], "--name", "new").exit_code == 0
    assert run_cli("rm", "old", "new", "-y").exit_code == 0
    with Hub() as hub, hub.db.write() as conn:    # "old" was removed 40 days ago
        from datetime import datetime, timedelta, timezone

        conn.execute(update(trash).where(trash.c.name == "old").values(
            trashed_at=datetime.now(timezone.utc) - timedelta(days=40)))
    found = run_cli("doctor", "--json")
    report = json.loads(found.stdout)
    assert found.exit_code == 1
    assert [(p["kind"], p["target"]) for p in report["problems"]] == [("expired_trash", "old")]
    monkeypatch.setenv("HUB_TRASH_DAYS", "60")          # a longer period keeps it
    assert cli_json("doctor")["healthy"] is True
    monkeypatch.setenv("HUB_TRASH_DAYS", "30")
    fixed = json.loads(run_cli("doctor", "--fix", "--grace", "0", "--json").stdout)
    assert fixed["healthy"] is True
    kinds = sorted({p["kind"] for p in fixed["fixed"]})
    assert kinds == ["expired_trash", "orphan_blob"]
    assert [e["name"] for e in cli_json("trash", "list")] == ["new"]
    assert run_cli("trash", "restore", "new").exit_code == 0 and run_cli("verify", "new").exit_code == 0
    monkeypatch.setenv("HUB_TRASH_DAYS", "soon")
    bad = run_cli("trash", "list")
    assert bad.exit_code != 0 and "HUB_TRASH_DAYS" in bad.stderr
