"""Untrusted text never steers the terminal: configs, tensor names and error text are
shown escaped in every CLI output, and --json stays valid JSON with the data intact."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hub.terminal_text import InertWriter, inert, is_inert
from tests.helpers import copy_adapter, registry_snapshot, run_cli

HOSTILE = "evil\x1b]0;pwned\x07\x1b[2J\x1b[H\r\u202egnp.exe\x9b31m\x7f\U000e0041"
DANGEROUS = ("\x1b", "\x07", "\r", "\u202e", "\x9b", "\x7f", "\U000e0041")


def _clean(text: str) -> bool:
    return not any(ch in text for ch in DANGEROUS)


def test_inert_escapes_controls_and_keeps_printable_text():
    assert inert(HOSTILE) == ("evil\\x1b]0;pwned\\x07\\x1b[2J\\x1b[H\\x0d\\u202egnp.exe\\x9b31m\\x7f"
                              "\\U000e0041")
    for text in ("plain", "é 中文 🙂 Ω", "a b", ""):
        assert inert(text) == text and is_inert(text)
    assert inert("a\nb\tc") == "a\\x0ab\\x09c"
    assert inert("a\nb\tc", newlines=True) == "a\nb\tc"
    assert inert(42) == "42"
    for ch in ["\u2028", "\u2066", "\u200f", "\ufeff", "\u0000", "\x85", "\ue000"]:
        assert not is_inert(ch) and is_inert(inert(ch))


def test_inert_writer_hides_the_binary_buffer():
    import io

    sink = io.StringIO()
    writer = InertWriter(sink)
    writer.write("x\x1b[2Jy\n")
    assert sink.getvalue() == "x\\x1b[2Jy\n"
    assert not hasattr(writer, "buffer")
    with pytest.raises(TypeError):
        writer.write(b"bytes")


@pytest.fixture()
def hostile_adapter(artifacts, tmp_path, hub_home):
    folder = copy_adapter(artifacts["plain"][1], tmp_path / "hostile")
    config = json.loads((folder / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = HOSTILE
    (folder / "adapter_config.json").write_text(json.dumps(config))
    result = run_cli("add", folder, "--name", "hostile")
    assert result.exit_code == 0, result.stderr
    assert _clean(result.stdout + result.stderr)
    return folder


def test_list_and_show_print_config_text_escaped(hostile_adapter, hub_home):
    before = registry_snapshot(hub_home)
    for args in (["list"], ["show", "hostile"], ["list", "--base", "evil"]):
        result = run_cli(*args)
        assert result.exit_code == 0, result.stderr
        assert _clean(result.stdout + result.stderr), (args, result.stdout)
        assert "evil\\x1b]0;pwned\\x07" in result.stdout
    assert registry_snapshot(hub_home) == before


def test_json_output_is_valid_ascii_json_with_the_data_intact(hostile_adapter):
    for args in (["show", "hostile", "--json"], ["list", "--json"]):
        result = run_cli(*args)
        assert result.exit_code == 0, result.stderr
        assert result.stdout.isascii() and _clean(result.stdout)
        doc = json.loads(result.stdout)
        record = doc if isinstance(doc, dict) else doc[0]
        assert record["base_model"] == HOSTILE


def test_check_output_is_inert(hostile_adapter, artifacts):
    result = run_cli("check", "hostile", "--base", artifacts["plain"][0])
    assert _clean(result.stdout + result.stderr), result.stdout


def test_error_lines_escape_names_and_paths(hub_home):
    run_cli("list")   # a registry exists, so 'unchanged' means something
    before = registry_snapshot(hub_home)
    result = run_cli("show", HOSTILE)
    assert result.exit_code != 0
    assert _clean(result.stderr) and len(result.stderr.strip().splitlines()) == 1
    result = run_cli("add", f"/nonexistent/{HOSTILE}")
    assert result.exit_code != 0 and _clean(result.stderr)
    assert registry_snapshot(hub_home) == before


def test_exception_text_from_outside_hub_is_inert(tmp_path):
    """An exception hub does not know (here: an OSError carrying a hostile file name) is
    rendered through the same table, one inert line."""
    from hub.error_lines import render_error

    line, code = render_error(OSError(5, "I/O error", f"/tmp/{HOSTILE}"))
    assert _clean(line) and "\n" not in line and code == 1
    line, code = render_error(RuntimeError(f"boom {HOSTILE}\nsecond line"))
    assert _clean(line) and "\n" not in line and code == 70


def test_real_terminal_process_output_is_inert(hostile_adapter, hub_home):
    """The installed entry point, as a separate process writing to a pipe."""
    out = subprocess.run([sys.executable, "-m", "hub", "show", "hostile"], capture_output=True, timeout=120,
                         env={**__import__("os").environ, "HUB_HOME": str(hub_home)})
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode("utf-8")
    assert _clean(text) and "\\x1b]0;pwned" in text
