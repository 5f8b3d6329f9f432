"""The plugin registry: entry-point groups hub.formats, hub.runtimes, hub.methods.

A throwaway distribution (a dist-info folder with entry_points.txt and a module, on
PYTHONPATH) adds a format, a runtime and a combination method; the real CLI, in a fresh
interpreter, lists and uses them. Commands that use no plugin import none."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from hub import plugins
from tests.helpers import run_cli
from tests.test_startup_imports import imported

REPO = Path(__file__).resolve().parents[1]

PLUGIN_MODULE = '''
"""A third-party hub plugin, as another package would ship it."""
import json
from hub.combine.declare import Method
from hub.combine.exact import combine_cat
from hub.compat.runtime import RuntimeRules
from hub.findings import Finding
from hub.formats.unit import FormatUnit


def _write(job, tmp):
    tmp.write_text(json.dumps({"adapter": job.adapter_name, "modules": sorted(job.adapter.modules)}))
    return {"modules": len(job.adapter.modules)}


FORMAT = FormatUnit("demo-json", "a JSON list of the adapted modules", "file", write=_write)
RUNTIME = RuntimeRules("demo-rt", "refuses every rank above 4", lambda a, base: [
    Finding("VLLM_RANK_TOO_HIGH", "error", None, f"demo-rt serves rank <= 4, not {a.max_rank}")
] if a.max_rank > 4 else [])
METHOD = Method("demo_cat", "cat, under another name", exact=True, params=(), combine=combine_cat)
'''

ENTRY_POINTS = '''
[hub.formats]
demo-json = hubdemo_plugin:FORMAT
[hub.runtimes]
demo-rt = hubdemo_plugin:RUNTIME
[hub.methods]
demo_cat = hubdemo_plugin:METHOD
broken = hubdemo_plugin:NOT_THERE
'''


@pytest.fixture()
def plugin_path(tmp_path):
    site = tmp_path / "site"
    (site / "hubdemo_plugin").mkdir(parents=True)
    (site / "hubdemo_plugin" / "__init__.py").write_text(PLUGIN_MODULE)
    info = site / "hubdemo_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hubdemo-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(ENTRY_POINTS))
    return site


@pytest.fixture()
def env(plugin_path, artifacts, hub_home, tmp_path):
    assert run_cli("add", artifacts["plain"][1], "--name", "p").exit_code == 0
    return {**os.environ, "HUB_HOME": str(hub_home), "HUB_CACHE_DIR": str(tmp_path / "sql-cache"),
            "PYTHONPATH": os.pathsep.join([str(plugin_path), str(REPO)])}


def hub(*args, env):
    return subprocess.run([sys.executable, "-m", "hub", *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=300)


def test_builtins_are_the_pyproject_entry_points():
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]
    assert {g: declared.get(g, {}) for g in plugins.GROUPS} == plugins.BUILTIN


def test_every_builtin_loads_and_is_named_as_registered():
    for p in plugins.plugins():
        obj = p.load()
        assert obj.name == p.name, p


def test_hub_plugins_lists_formats_runtimes_methods_with_origin():
    result = run_cli("plugins", "--json")
    assert result.exit_code == 0, result.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(result.stdout)}
    for name in ("gguf", "ollama", "peft"):
        assert rows[("format", name)]["origin"] == plugins.BUILTIN_ORIGIN
    assert {("runtime", n) for n in ("vllm", "llama.cpp", "ollama", "peft")} <= set(rows)
    assert ("method", "svd") in rows
    text = run_cli("plugins").stdout
    assert "gguf" in text and "ollama" in text and "ORIGIN" in text


def test_a_third_party_plugin_is_listed_and_used_from_the_cli(env, tmp_path):
    listed = hub("plugins", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(listed.stdout)}
    assert rows[("format", "demo-json")]["origin"] == "hubdemo-plugin 0.1"
    assert rows[("runtime", "demo-rt")]["origin"] == "hubdemo-plugin 0.1"

    out = tmp_path / "p.json"
    done = hub("export", "p", out, "--format", "demo-json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["modules"] == sorted(json.loads(hub("show", "p", "--json", env=env)
                                                                       .stdout)["modules"])

    checked = hub("check", "p", "--runtime", "demo-rt", "--json", env=env)   # plain is rank 8
    assert checked.returncode == 1 and "demo-rt serves rank <= 4" in checked.stdout

    combined = hub("combine", "p:0.5", "p:0.5", "--method", "demo_cat", "--name", "pp", env=env)
    assert combined.returncode == 0, combined.stderr
    assert json.loads(hub("show", "pp", "--json", env=env).stdout)["r"] == 16


def test_a_broken_plugin_is_one_clear_line(env):
    result = hub("combine", "p:1", "p:1", "--method", "broken", "--name", "x", env=env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "hubdemo-plugin 0.1" in lines[0] and "failed to load" in lines[0], result.stderr


def test_unknown_format_is_a_usage_error():
    result = run_cli("export", "x", "out", "--format", "nope")
    assert result.exit_code == 2 and "unknown format 'nope'" in result.stderr


@pytest.mark.parametrize("args", [["list"], ["list", "--json"], ["show", "p"]])
def test_commands_that_use_no_plugin_import_none(env, args):
    modules = imported(*args, env=env)
    assert not modules & {"hubdemo_plugin", "gguf"}, args
    full = _full_modules(args, env)
    assert not {m for m in full if m.startswith(("hub.formats.gguf", "hub.formats.ollama", "hub.plugins",
                                                 "hub.formats.peft_folder"))}, args


def _full_modules(args, env):
    from tests.test_startup_imports import PROBE

    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, timeout=120)
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("MODULES "))
    return set(json.loads(line[len("MODULES "):]))
