"""The library API: README's "Use as a library" code runs as written against a real
adapter, and errors that now also subclass builtins still print one line in the CLI."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import hub
from tests.helpers import run_cli

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_library_code() -> str:
    text = README.read_text()
    section = text.split("## Use as a library", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the README's library section has one python block"
    return blocks[0]


def test_readme_library_example_runs(artifacts, tmp_path, monkeypatch, capsys):
    _base, adapter = artifacts["plain"]
    shutil.copytree(adapter, tmp_path / "my-lora")
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_library_code(), "README.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "style 8 ['q_proj', 'v_proj']"
    assert lines[1].startswith("style ") and len(lines[1].split()[1]) == 12
    assert "no-such-adapter" in lines[2]
    assert len(lines) == 3
    assert (tmp_path / "my-hub").is_dir()


def test_library_errors_are_builtins_too(artifacts, tmp_path):
    _base, adapter = artifacts["plain"]
    with hub.Hub(home=tmp_path / "home") as h:
        h.add(adapter, name="style")
        with pytest.raises(LookupError):
            h.get("missing")
        with pytest.raises(FileExistsError):
            h.add(adapter, name="style")
        with pytest.raises(ValueError):
            h.add(adapter, name="../escape")
        with pytest.raises(ValueError):       # InvalidAdapter: not an adapter folder
            h.add(tmp_path, name="empty")


def test_cli_still_prints_one_line_for_builtin_shaped_errors(artifacts):
    _base, adapter = artifacts["plain"]
    assert run_cli("add", str(adapter), "--name", "style").exit_code == 0
    missing = run_cli("show", "missing")
    assert missing.exit_code == 1 and missing.stderr.count("\n") == 1
    assert missing.stderr.startswith("hub: error: ") and "missing" in missing.stderr
    taken = run_cli("add", str(adapter), "--name", "style")
    assert taken.exit_code != 0 and taken.stderr.startswith("hub: error: ")
    assert "internal error" not in taken.stderr
