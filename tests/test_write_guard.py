"""Issue 11, data loss: every write target goes through hub.write_guard.

`merge --out`, `export` and `--overwrite` must refuse HUB_HOME, anything inside it, any
folder containing it, a registered base's folder, a linked adapter's folder, the
command's own sources, `/` and the home directory (symlinks resolved), with one clear
line, leaving the registry's rows, every file under the test's folder (HUB_HOME, the
store, bases, adapters, neighbours) and every symlink exactly as they were. Overwriting
an earlier merge output or export stays allowed until it is registered as a base.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys

import pytest

from tests.helpers import copy_adapter, one_line_error, registry_snapshot, run_cli, tree_snapshot

TRIED: list[str] = []


@pytest.fixture()
def world(artifacts, tmp_path, hub_home, monkeypatch):
    """A registry with a stored adapter, a linked one, a registered base, a fake $HOME
    and a neighbour file; views already built so reads change nothing."""
    fake_home = tmp_path / "home-of-user"
    (fake_home / "notes").mkdir(parents=True)
    (fake_home / "notes" / "todo.txt").write_text("keep me\n")
    monkeypatch.setenv("HOME", str(fake_home))
    (tmp_path / "neighbour.txt").write_text("keep me too\n")
    base = copy_adapter(artifacts.base("llama"), tmp_path / "bases" / "llama")
    linked = copy_adapter(artifacts["patterns"][1], tmp_path / "linked" / "patterns")
    for args in (["add", artifacts["plain"][1], "--name", "plain"], ["add", linked, "--link", "--name", "linkd"],
                 ["base", "add", base, "--name", "llama"], ["export", "plain", tmp_path / "warm"]):
        result = run_cli(*args)
        assert result.exit_code == 0, result.stderr
    shutil.rmtree(tmp_path / "warm")
    return {"tmp": tmp_path, "home": hub_home, "base": base, "linked": linked, "user_home": fake_home,
            "adapter": artifacts["plain"][1]}


def _refused(world, args, *needles):
    before = (registry_snapshot(world["home"]), tree_snapshot(world["tmp"]))
    err = one_line_error(run_cli(*args), *needles)
    assert (registry_snapshot(world["home"]), tree_snapshot(world["tmp"])) == before, args
    TRIED.append(" ".join(str(a) for a in args))
    return err


def _targets(world):
    """(target, what the refusal names) for every protected place."""
    home, tmp = world["home"], world["tmp"]
    link_to_home = tmp / "innocent-link"
    if not link_to_home.is_symlink():
        link_to_home.symlink_to(home)
    link_to_store = tmp / "innocent-store-link"
    if not link_to_store.is_symlink():
        link_to_store.symlink_to(home / "store")
    return [
        (home, "HUB_HOME"), (home / "store", "HUB_HOME"), (home / "store" / "sha256", "HUB_HOME"),
        (home / "views", "HUB_HOME"), (home / "new-inside", "HUB_HOME"), (home / "registry.db", "registry"),
        (tmp, "HUB_HOME"), (tmp.parent, "HUB_HOME"),                     # folders that contain HUB_HOME
        (link_to_home, "HUB_HOME"), (link_to_store, "HUB_HOME"),          # symlinks resolved
        (link_to_home / "sub", "HUB_HOME"),
        (world["base"], "registered base"), (world["base"] / "sub", "registered base"),
        (world["base"].parent, "registered base"),
        (world["linked"], "linked adapter"), (world["linked"].parent, "linked adapter"),
        (world["user_home"], "home directory"), ("/", "root folder"),
    ]


def test_merge_out_refuses_every_protected_place(world):
    for target, names in _targets(world):
        if os.path.isfile(target):
            continue   # click refuses a file for --out before hub runs
        for extra in ([], ["--overwrite"]):
            _refused(world, ["merge", "--base", "llama", "plain", "--out", target, "--device", "cpu", *extra],
                     "refusing to write", names)
    assert (world["user_home"] / "notes" / "todo.txt").read_text() == "keep me\n"


def test_merge_refuses_its_own_sources(world, artifacts):
    adapter_copy = copy_adapter(world["adapter"], world["tmp"] / "my-adapter")
    _refused(world, ["merge", "--base", "llama", adapter_copy, "--out", adapter_copy, "--overwrite"],
             "source of this command")
    _refused(world, ["merge", "--base", "llama", adapter_copy, "--out", adapter_copy / "merged"],
             "source of this command")
    base_folder = copy_adapter(artifacts.base("llama"), world["tmp"] / "unregistered-base")
    _refused(world, ["merge", "--base", base_folder, "plain", "--out", base_folder, "--overwrite"],
             "source of this command")


def test_export_refuses_every_protected_place(world):
    for target, names in _targets(world):
        for extra in ([], ["--overwrite"]):
            _refused(world, ["export", "plain", target, *extra], "refusing to write", names)
    # exporting a linked adapter onto (or into) its own folder
    _refused(world, ["export", "linkd", world["linked"], "--overwrite"], "refusing to write")
    _refused(world, ["export", "linkd", world["linked"] / "copy"], "refusing to write")


def test_overwriting_earlier_outputs_is_allowed_until_registered_as_base(world):
    tmp = world["tmp"]
    out = tmp / "merged"
    assert run_cli("merge", "--base", "llama", "plain", "--out", out, "--device", "cpu").exit_code == 0
    redo = run_cli("merge", "--base", "llama", "plain:0.5", "--out", out, "--device", "cpu", "--overwrite")
    assert redo.exit_code == 0, redo.stderr
    exported = tmp / "exported"
    assert run_cli("export", "plain", exported).exit_code == 0
    again = run_cli("export", "plain", exported, "--overwrite")
    assert again.exit_code == 0, again.stderr
    assert run_cli("base", "add", out, "--name", "merged-base").exit_code == 0
    _refused(world, ["merge", "--base", "llama", "plain", "--out", out, "--device", "cpu", "--overwrite"],
             "registered base 'merged-base'")
    _refused(world, ["export", "plain", out, "--overwrite"], "registered base 'merged-base'")


def test_export_over_a_regular_file_leaves_nothing_hidden(world):
    tmp = world["tmp"]
    target = tmp / "out" / "plain-export"
    target.parent.mkdir()
    target.write_text("an old file\n")
    refused = run_cli("export", "plain", target)
    assert refused.exit_code == 1 and "--overwrite" in refused.stderr and target.read_text() == "an old file\n"
    result = run_cli("export", "plain", target, "--overwrite")
    assert result.exit_code == 0, result.stderr
    assert target.is_dir() and (target / "adapter_config.json").is_file()
    assert sorted(p.name for p in target.parent.iterdir()) == ["plain-export"]   # no .plain-export.*.old


def _in_process_with_umask(mask: int, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hub", *map(str, args)], capture_output=True, text=True,
                          preexec_fn=lambda: os.umask(mask), env=os.environ.copy(), timeout=300)


@pytest.mark.parametrize("mask, want", [(0o022, 0o755), (0o002, 0o775)])
def test_outputs_follow_the_umask(world, mask, want):
    tmp = world["tmp"]
    merged, exported = tmp / f"merged-{mask:o}", tmp / f"exported-{mask:o}"
    for args in (["merge", "--base", "llama", "plain", "--out", merged, "--device", "cpu"],
                 ["export", "plain", exported]):
        proc = _in_process_with_umask(mask, *args)
        assert proc.returncode == 0, proc.stderr
    for folder in (merged, exported):
        assert stat.S_IMODE(folder.stat().st_mode) == want, (folder, oct(folder.stat().st_mode))
        for f in folder.iterdir():
            assert stat.S_IMODE(f.stat().st_mode) == want & 0o666, (f, oct(f.stat().st_mode))


def test_report_cases_tried():
    print(f"\nwrite guard: {len(TRIED)} refused write targets tried")
