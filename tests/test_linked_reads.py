"""A linked adapter's files are read only as registered: a file later swapped for a symbolic
link (to a secret or to identical bytes), changed in place, replaced by a FIFO, or a folder
swapped for a link is refused by export, push, merge, combine and the file API, before any
byte travels; the registry, the store and the surroundings stay as they were."""

from __future__ import annotations

import hashlib
import os
import shutil

import pytest

from tests.helpers import copy_adapter, registry_state, run_cli, run_cli_bounded

SECRET = b"TOP-SECRET-" + b"k" * 64


def ok(*args):
    result = run_cli(*args)
    assert result.exit_code == 0, result.stderr
    return result


def _tree(root):
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and not
                                       p.is_symlink() and not p.is_fifo() else "special")
            for p in sorted(root.rglob("*")) if not p.is_dir() or p.is_symlink()}




@pytest.fixture
def team(artifacts, tmp_path, hub_home):
    """A linked adapter 'style' in a shared folder, a stored adapter 'other', and a secret file."""
    share = tmp_path / "share"
    folder = copy_adapter(artifacts["plain"][1], share / "style")
    (folder / "README.md").write_text("# style\n")
    ok("add", folder, "--link", "--name", "style")
    ok("add", artifacts.adapter("llama", "linked-peer", seed=5, r=4, lora_alpha=8, target_modules=["q_proj"]),
       "--name", "other")
    secret = tmp_path / "home" / ".ssh" / "id_ed25519"
    secret.parent.mkdir(parents=True)
    secret.write_bytes(SECRET)
    return folder, secret


def swap_for_secret_link(folder, secret):
    (folder / "README.md").unlink()
    os.symlink(secret, folder / "README.md")


def swap_for_identical_link(folder, secret):
    """Same bytes, same size, same hash, but a link: still refused (links are never followed)."""
    twin = folder.parent / "twin-weights"
    shutil.copyfile(folder / "adapter_model.safetensors", twin)
    (folder / "adapter_model.safetensors").unlink()
    os.symlink(twin, folder / "adapter_model.safetensors")


def change_in_place(folder, secret):
    cfg = folder / "adapter_config.json"
    text = cfg.read_text()
    cfg.write_text(text.replace('"r": 8', '"r": 9'))   # same size, other bytes
    assert len(cfg.read_text()) == len(text) and cfg.read_text() != text


def swap_for_fifo(folder, secret):
    (folder / "README.md").unlink()
    os.mkfifo(folder / "README.md")


def swap_folder_for_link(folder, secret):
    moved = folder.parent / "style-moved"
    os.rename(folder, moved)
    os.symlink(moved, folder)


ATTACKS = [swap_for_secret_link, swap_for_identical_link, change_in_place, swap_for_fifo, swap_folder_for_link]


def _no_secret_under(root) -> bool:
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and SECRET in path.read_bytes():
            return False
    return True


def _refused(result):
    line = result.stderr.strip()
    assert result.exit_code == 1, (result.exit_code, result.stderr, result.stdout)
    assert line.startswith("hub: error:") and "\n" not in line, result.stderr
    assert SECRET.decode() not in result.stdout + result.stderr
    return line




@pytest.mark.parametrize("attack", ATTACKS, ids=lambda f: f.__name__)
def test_export_merge_combine_refuse_a_tampered_linked_file(team, attack, artifacts, tmp_path, hub_home):
    folder, secret = team
    attack(folder, secret)
    before, around = registry_state(hub_home), _tree(tmp_path / "share")
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    for args in (["export", "style", outputs / "exported"],
                 ["merge", "--base", artifacts["plain"][0], "style:1.0", "--out", outputs / "merged"],
                 ["combine", "style:0.5", "other:0.5", "--method", "linear", "--name", "mix"]):
        line = _refused(run_cli_bounded(*args))
        assert "linked" in line or "symbolic link" in line or "regular file" in line, line
    assert not any(outputs.iterdir()), list(outputs.iterdir())
    assert _no_secret_under(hub_home) and _no_secret_under(outputs)
    assert registry_state(hub_home) == before and _tree(tmp_path / "share") == around
    assert not (hub_home / "tmp").exists() or not any((hub_home / "tmp").iterdir())


@pytest.mark.parametrize("attack", [swap_for_secret_link, swap_for_identical_link, change_in_place],
                         ids=lambda f: f.__name__)
def test_push_refuses_a_tampered_linked_file(team, attack, hub_online, hub_home, tmp_path):
    folder, secret = team
    attack(folder, secret)
    before = registry_state(hub_home)
    repo_id = hub_online.repo_id("linked")
    mark = hub_online.mark()
    _refused(run_cli_bounded("push", "style", repo_id))
    assert not hub_online.store.exists(repo_id)
    assert not [r for r in hub_online.requests(mark) if "/commit/" in r or "preupload" in r]
    assert _no_secret_under(hub_online.root)
    assert registry_state(hub_home) == before


def test_file_api_refuses_links_and_serves_registered_bytes(team, hub_home):
    from hub.service import Hub

    folder, secret = team
    with Hub() as hub:
        with hub.open_adapter_file("style", "adapter_config.json") as fh:
            assert fh.read() == (folder / "adapter_config.json").read_bytes()
        with hub.open_adapter_file("other", "adapter_config.json") as fh:
            assert b"lora_alpha" in fh.read()
        swap_for_secret_link(folder, secret)
        with pytest.raises(Exception) as caught:
            hub.open_adapter_file("style", "README.md")
        assert "symbolic link" in str(caught.value) and SECRET.decode() not in str(caught.value)


def test_untampered_linked_adapter_still_exports_and_leaves_no_copy(team, tmp_path, hub_home):
    folder, _ = team
    ok("export", "style", tmp_path / "out")
    for name in ("adapter_config.json", "adapter_model.safetensors", "README.md"):
        assert (tmp_path / "out" / name).read_bytes() == (folder / name).read_bytes()
    ok("combine", "style:0.5", "other:0.5", "--method", "linear", "--name", "mix")
    assert not (hub_home / "tmp").exists() or not any((hub_home / "tmp").iterdir())


def test_add_link_refuses_symlinked_files(artifacts, tmp_path, hub_home):
    folder = copy_adapter(artifacts["plain"][1], tmp_path / "cache-snapshot")
    real = tmp_path / "cache-snapshot" / "blob"
    os.rename(folder / "adapter_config.json", real)
    os.symlink(real, folder / "adapter_config.json")
    ok("list")
    before = registry_state(hub_home)
    result = run_cli("add", folder, "--link", "--name", "snap")
    line = _refused(result)
    assert "without --link" in line
    assert registry_state(hub_home) == before
    ok("add", folder, "--name", "snap")   # copying it into the store is fine
