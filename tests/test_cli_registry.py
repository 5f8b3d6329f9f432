"""The core CLI contract on real adapters: scan, list filters, tags, rm, rename, verify, link."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.helpers import cli_json, copy_adapter, registry_snapshot, run_cli, store_blobs


@pytest.fixture()
def tree(artifacts, tmp_path):
    root = tmp_path / "loras"
    for kind in ("plain", "rslora", "dora", "gpt2", "embedding"):
        copy_adapter(artifacts[kind][1], root / ("gpt2" if kind == "gpt2" else "llama") / kind)
    # the same content twice, and a checkpoint folder name that repeats
    copy_adapter(artifacts["plain"][1], root / "zz-dupes" / "plain-again")
    copy_adapter(artifacts["patterns"][1], root / "run1" / "checkpoint-100")
    copy_adapter(artifacts["qwen2"][1], root / "run2" / "checkpoint-100")
    bad = copy_adapter(artifacts["plain"][1], root / "broken")
    (bad / "adapter_config.json").write_text("not json")
    return root


def test_scan_summary_and_names(tree):
    result = run_cli("scan", tree)
    assert result.exit_code == 1  # one folder failed
    assert "added 7, skipped 1 (already registered), failed 1" in result.stdout
    assert "broken" in result.stderr and "not valid JSON" in result.stderr
    names = [r["name"] for r in cli_json("list")]
    assert "checkpoint-100" in names and "run2-checkpoint-100" in names
    again = run_cli("scan", tree, "--json")
    summary = json.loads(again.stdout)
    assert summary["added"] == [] and len(summary["skipped"]) == 8 and len(summary["failed"]) == 1


def test_list_filters_and_sorting(tree):
    run_cli("scan", tree, "--tag", "team")
    by = lambda *args: [r["name"] for r in cli_json("list", *args)]  # noqa: E731
    assert by("--rank", "4") == ["dora", "embedding", "gpt2"]
    assert by("--target", "c_attn") == ["gpt2"]
    assert by("--target", "q_proj", "--target", "k_proj") == ["rslora", "run2-checkpoint-100"]
    assert by("--flag", "rslora") == ["rslora"]
    assert by("--flag", "dora") == ["dora"]
    assert by("--flag", "embed") == ["embedding"]
    assert by("--flag", "fifo") == ["gpt2"]
    assert "dora" not in by("--no-flag", "dora")
    assert by("--alpha", "16", "--rank", "8") == ["checkpoint-100", "plain", "rslora"]
    assert by("--search", "checkpoint") == ["checkpoint-100", "run2-checkpoint-100"]
    assert by("--tag", "team") == by()
    sizes = [r["size_bytes"] for r in cli_json("list", "--sort", "size", "--desc")]
    assert sizes == sorted(sizes, reverse=True)
    assert len(by("--limit", "2")) == 2
    text = run_cli("list", "--rank", "4")
    assert text.exit_code == 0 and text.stdout.splitlines()[0].split()[:4] == ["NAME", "BASE", "R", "ALPHA"]
    empty = run_cli("list", "--rank", "999")
    assert empty.exit_code == 0 and empty.stdout == "" and "no adapters match" in empty.stderr


def test_tag_rename_rm(artifacts, hub_home):
    assert run_cli("add", artifacts["plain"][1], "--name", "a", "--tag", "x").exit_code == 0
    assert cli_json("tag", "a", "y", "z")["tags"] == ["x", "y", "z"]
    assert cli_json("tag", "a", "--remove", "x")["tags"] == ["y", "z"]
    assert run_cli("rename", "a", "b").exit_code == 0
    assert cli_json("show", "b")["tags"] == ["y", "z"]
    missing = run_cli("show", "a")
    assert missing.exit_code == 1 and "no adapter named 'a'" in missing.stderr
    blobs = list((hub_home / "store").rglob("*"))
    assert any(p.is_file() for p in blobs)
    dry = json.loads(run_cli("rm", "b", "--dry-run", "--json").stdout)
    assert dry["dry_run"] and len(dry["plans"][0]["blobs"]) == 3
    assert cli_json("list")[0]["name"] == "b"
    assert run_cli("rm", "b", "-y").exit_code == 0
    assert cli_json("list") == []
    # rm moves to the trash: the files stay until it is emptied
    assert [e["name"] for e in cli_json("trash", "list")] == ["b"]
    assert len(store_blobs(hub_home)) == 3
    assert run_cli("trash", "empty", "-y").exit_code == 0
    assert cli_json("trash", "list") == []
    assert not store_blobs(hub_home)


def test_rm_keeps_blobs_shared_with_another_adapter(artifacts, tmp_path):
    one = copy_adapter(artifacts["plain"][1], tmp_path / "one")
    two = copy_adapter(artifacts["plain"][1], tmp_path / "two")
    (two / "README.md").write_text("different card, same weights")
    cfg = json.loads((two / "adapter_config.json").read_text())
    cfg["revision"] = "v2"  # a distinct config makes a distinct adapter that shares the weights blob
    (two / "adapter_config.json").write_text(json.dumps(cfg))
    run_cli("add", one, "--name", "one")
    run_cli("add", two, "--name", "two")
    assert run_cli("rm", "one", "-y").exit_code == 0
    assert run_cli("trash", "empty", "-y").exit_code == 0
    assert run_cli("verify", "two").exit_code == 0


def test_verify_flags_nan_and_tampering(artifacts, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = copy_adapter(artifacts["plain"][1], tmp_path / "nan")
    tensors = load_file(folder / "adapter_model.safetensors")
    key = sorted(tensors)[0]
    tensors[key][0, 0] = float("nan")
    save_file(tensors, folder / "adapter_model.safetensors")
    assert run_cli("add", folder, "--name", "nan").exit_code == 1  # refused by default
    assert run_cli("add", folder, "--name", "nan", "--allow-nonfinite").exit_code == 0
    result = run_cli("verify", "nan")
    assert result.exit_code == 1 and "NaN" in result.stdout

    linked = copy_adapter(artifacts["dora"][1], tmp_path / "linked")
    assert run_cli("add", linked, "--link", "--name", "linked").exit_code == 0
    assert run_cli("verify", "linked").exit_code == 0
    cfg = linked / "adapter_config.json"
    cfg.write_text(cfg.read_text().replace("LORA", "lora"))  # same size, different bytes
    report = json.loads(run_cli("verify", "linked", "--json").stdout)
    assert not report[0]["ok"] and "sha256" in report[0]["problems"][0]


def test_link_registers_in_place(artifacts, hub_home, tmp_path):
    folder = copy_adapter(artifacts["gpt2"][1], tmp_path / "in-place")
    rec = json.loads(run_cli("add", folder, "--link", "--json").stdout)["adapter"]
    assert rec["storage"] == "link" and rec["path"] == str(folder.resolve())
    assert not store_blobs(hub_home)
    shutil.rmtree(folder)
    result = run_cli("export", rec["name"], tmp_path / "out")
    assert result.exit_code == 1 and "linked adapter folder is gone" in result.stderr


def test_database_url_option_and_db_commands(artifacts, tmp_path):
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    assert run_cli("--db", url, "add", artifacts["plain"][1], "--name", "p").exit_code == 0
    # the store under HUB_HOME now belongs to that registry: the default one is refused
    refused = run_cli("list")
    assert refused.exit_code == 1 and "belongs to registry" in refused.stderr and "HUB_DATABASE_URL" in refused.stderr
    assert [r["name"] for r in cli_json("--db", url, "list")] == ["p"]
    current = cli_json("--db", url, "db", "current")
    assert current["up_to_date"] and current["revision"] == current["head"]
    bad = run_cli("--db", "nonsense://", "list")
    assert bad.exit_code == 1 and "database" in bad.stderr


def test_every_command_has_help():
    from hub.cli import cli, load_commands

    load_commands()

    def walk(group, prefix):
        for name, command in group.commands.items():
            yield prefix + [name], command
            if hasattr(command, "commands"):
                yield from walk(command, prefix + [name])

    commands = list(walk(cli, []))
    assert len(commands) >= 10
    for path, command in commands:
        result = run_cli(*path, "--help")
        assert result.exit_code == 0, path
        assert (command.help or "").strip(), f"`hub {' '.join(path)}` has no help text"
        assert "Usage:" in result.stdout


def test_errors_are_one_line_without_traceback(tmp_path):
    result = run_cli("add", tmp_path / "nope")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_registry_unchanged_by_reading_commands(artifacts, hub_home):
    run_cli("add", artifacts["plain"][1], "--name", "p")
    before = registry_snapshot(hub_home)
    for args in (["list"], ["show", "p"], ["list", "--json"], ["verify", "p"]):
        assert run_cli(*args).exit_code == 0
    assert registry_snapshot(hub_home) == before
