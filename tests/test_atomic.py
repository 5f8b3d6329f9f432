"""hub.atomic is the one way hub writes a file or folder into place: whole or not at all,
under a hidden name `hub doctor` recognises, and no other module renames into place."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from hub.atomic import AtomicFolder, atomic_file, write_text
from hub.doctor import _OUTPUT_LEFTOVER
from hub.errors import AlreadyExists

REPO = Path(__file__).resolve().parents[1]
# the content-addressed store names a blob by its hash, known only once written (see hub.atomic)
OWN_SCHEME = {"hub/atomic.py", "hub/registry/store.py"}


def test_a_failed_file_write_leaves_the_old_content_and_no_staging(tmp_path):
    target = tmp_path / "settings.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as tmp:
            assert tmp.name == target.name and _OUTPUT_LEFTOVER.match(tmp.parent.name)
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["settings.json"]
    write_text(target, "new")
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["settings.json"]


def test_a_folder_appears_only_when_committed_and_swaps_an_old_one(tmp_path):
    target = tmp_path / "out"
    with AtomicFolder(target) as tmp:
        (tmp / "a").write_text("1")
        assert not target.exists() and _OUTPUT_LEFTOVER.match(tmp.name)
    assert not target.exists() and list(tmp_path.iterdir()) == []   # not committed: nothing left
    folder = AtomicFolder(target)
    with folder as tmp:
        (tmp / "a").write_text("1")
        folder.commit()
    assert (target / "a").read_text() == "1"
    with pytest.raises(AlreadyExists):
        AtomicFolder(target).check()
    folder = AtomicFolder(target, overwrite=True)
    with folder as tmp:
        (tmp / "b").write_text("2")
        folder.commit()
    assert sorted(os.listdir(target)) == ["b"] and os.listdir(tmp_path) == ["out"]


def test_no_other_module_renames_into_place():
    """os.replace / os.rename / tempfile.mkstemp are hub.atomic's (and the store's) alone."""
    found = []
    for path in sorted((REPO / "hub").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel in OWN_SCHEME:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and isinstance(node.func.value, ast.Name) \
                    and (node.func.value.id, node.func.attr) in {("os", "replace"), ("os", "rename"),
                                                                  ("tempfile", "mkstemp")}:
                found.append(f"{rel}:{node.lineno}")
    assert found == []
