"""Issue 11: numbers, names, `rm` without a terminal, full disks.

Every hostile value is refused up front with one clear line (never "internal error",
never a written or recorded result), and afterwards the registry's rows, every file
under the test folder (HUB_HOME, the store, adapters, outputs) are unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.helpers import copy_adapter, one_line_error, registry_snapshot, run_cli, tree_snapshot

TRIED: dict[str, int] = {}


@pytest.fixture()
def stocked(artifacts, hub_home):
    for kind in ("plain", "patterns"):
        result = run_cli("add", artifacts[kind][1], "--name", kind)
        assert result.exit_code == 0, result.stderr
    assert run_cli("base", "add", artifacts.base("llama"), "--name", "llama").exit_code == 0
    assert run_cli("export", "plain", hub_home.parent / "warm").exit_code == 0   # views built
    shutil.rmtree(hub_home.parent / "warm")
    return hub_home


def _refused(home, args, *needles, kind="other", input=None):
    before = registry_snapshot(home), tree_snapshot(home.parent)
    result = run_cli(*args, input=input)
    err = one_line_error(result, *needles)
    assert (registry_snapshot(home), tree_snapshot(home.parent)) == before, args
    TRIED[kind] = TRIED.get(kind, 0) + 1
    return err


BAD_WEIGHTS = ["nan", "NaN", "inf", "-inf", "+inf", "1e39", "-1e39", "1e309", "1e7", "abc", "0x1p2000", ""]


@pytest.mark.parametrize("weight", BAD_WEIGHTS)
def test_merge_weights_that_are_not_finite_numbers(stocked, weight):
    out = stocked.parent / "merged"
    needle = "is not a number" if weight in ("abc", "0x1p2000", "") else "not a finite number"
    err = _refused(stocked, ["merge", "--base", "llama", f"plain:{weight}", "--out", out, "--device", "cpu"],
                   "weight", needle, kind="merge weight")
    assert "no adapter named" not in err and not out.exists()


@pytest.mark.parametrize("weight", ["nan", "inf", "1e39", "abc"])
def test_combine_weights_and_factors(stocked, weight):
    _refused(stocked, ["combine", f"plain:{weight}", "patterns:0.5", "--name", "mix", "--method", "linear"],
             "weight", kind="combine weight")
    _refused(stocked, ["combine", "plain:0.5", "patterns:0.5", "--name", "mix", "--method", "linear",
                       "--layer-weights", f"0-1={weight}"], kind="layer weight factor")


@pytest.mark.parametrize("weight", [".nan", ".inf", "-.inf", "1e39"])
def test_recipe_weights(stocked, weight):
    recipe = stocked.parent / "recipe.yaml"
    recipe.write_text(f"method: linear\nname: mix\nparents:\n  - {{name: plain, weight: {weight}}}\n"
                      "  - {name: patterns, weight: 0.5}\n")
    _refused(stocked, ["combine", "--recipe", recipe], "weight", kind="recipe weight")


@pytest.mark.parametrize("key, value", [("lora_alpha", "1e308"), ("lora_alpha", "1e400"), ("lora_alpha", "NaN"),
                                        ("lora_alpha", "Infinity"), ("lora_alpha", "-Infinity"),
                                        ("alpha_pattern", '{"v_proj": 1e308}'), ("r", "1e308"),
                                        ("lora_dropout", "NaN")])
def test_config_numbers_that_overflow_are_refused_on_add_and_merge(stocked, artifacts, key, value):
    bad = copy_adapter(artifacts["plain"][1], stocked.parent / "bad-adapter")
    cfg = bad / "adapter_config.json"
    doc = json.loads(cfg.read_text())
    doc[key] = "__X__"
    cfg.write_text(json.dumps(doc).replace('"__X__"', value))
    _refused(stocked, ["add", bad, "--name", "bad"], "adapter_config.json", kind="config number")
    _refused(stocked, ["merge", "--base", "llama", bad, "--out", stocked.parent / "m", "--device", "cpu"],
             kind="config number")


def test_merge_that_overflows_the_output_dtype_is_refused(stocked):
    out = stocked.parent / "overflow"
    _refused(stocked, ["merge", "--base", "llama", "plain:1e6", "--out", out, "--device", "cpu",
                       "--dtype", "fp16"], "too large for float16", kind="merge overflow")
    assert not out.exists()


@pytest.mark.parametrize("size", ["nanGB", "infGB", "1e300GB", "-5GB", "0"])
def test_shard_sizes(stocked, size):
    _refused(stocked, ["merge", "--base", "llama", "plain", "--out", stocked.parent / "m", "--shard-size", size],
             "size", kind="shard size")


BAD_NAMES = ["evil\n", "evil\r", "ev\til", "evil\x1b[2J", "evil\x00", "\nevil", "evil\u2028", "a..b", "_lead"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_names_and_tags_with_control_characters_are_refused_everywhere(stocked, artifacts, name):
    shown = name.encode("unicode_escape").decode()
    cases = [
        (["add", artifacts["rslora"][1], "--name", name], "invalid name"),
        (["add", artifacts["rslora"][1], "--name", "ok", "--tag", name], "invalid tag"),
        (["rename", "plain", name], "invalid name"),
        (["tag", "plain", name], "invalid tag"),
        (["combine", "plain:0.5", "patterns:0.5", "--method", "linear", "--name", name], "invalid name"),
        (["merge", "--base", "llama", "plain", "--out", stocked.parent / "m", "--name", name], "invalid model name"),
        (["base", "add", artifacts.base("llama"), "--name", name], "invalid base name"),
        (["pull", f"org/{name}"], "invalid Hub repo id"),
        (["pull", f"{name}/repo"], "invalid Hub repo id"),
    ]
    recipe = stocked.parent / "recipe.json"
    recipe.write_text(json.dumps({"method": "linear", "name": name,
                                  "parents": [{"name": "plain", "weight": 0.5}, {"name": "patterns", "weight": 0.5}]}))
    cases.append((["combine", "--recipe", recipe], "name"))
    if name == "a..b":   # a valid tag and base name: only names refuse ".."
        cases = [c for c in cases if c[1] not in ("invalid tag", "invalid base name")]
    for args, needle in cases:
        err = _refused(stocked, args, needle if name else "", kind="name")
        assert shown in err or not name or needle == "name", (args, err)


def test_rm_without_yes_and_without_a_terminal_refuses(stocked):
    _refused(stocked, ["rm", "plain"], "stdin is not a terminal", "--yes", kind="rm")
    _refused(stocked, ["rm", "plain", "patterns"], "--yes", input="y\n", kind="rm")
    proc = subprocess.run([sys.executable, "-m", "hub", "rm", "plain"], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert proc.returncode == 2 and "--yes" in proc.stderr
    assert run_cli("show", "plain").exit_code == 0
    assert run_cli("rm", "plain", "--yes").exit_code == 0


def test_no_stray_none_in_a_refused_merge(stocked, artifacts):
    other = artifacts.base("llama", hidden_size=96)
    err = _refused(stocked, ["merge", "--base", other, "plain", "--out", stocked.parent / "m", "--device", "cpu"],
                   "hub check", kind="newcomer")
    assert "None" not in err


def test_similar_lists_the_most_similar_first_by_signed_cosine(stocked, artifacts, tmp_path):
    """An adapter pointing the opposite way (cosine -1) is the least similar, not the most."""
    from safetensors.torch import load_file, save_file

    opposite = copy_adapter(artifacts["plain"][1], tmp_path / "opposite")
    weights = opposite / "adapter_model.safetensors"
    tensors = {k: (-v if "lora_B" in k else v) for k, v in load_file(str(weights)).items()}
    save_file(tensors, str(weights), metadata={"format": "pt"})
    assert run_cli("add", opposite, "--name", "opposite").exit_code == 0
    assert run_cli("add", artifacts["rslora"][1], "--name", "unrelated").exit_code == 0
    doc = json.loads(run_cli("similar", "plain", "--json").stdout)
    order = [p["b"] if p["a"] == "plain" else p["a"] for p in doc["pairs"]]
    cosines = [p["cosine"] for p in doc["pairs"]]
    assert cosines == sorted(cosines, reverse=True), cosines
    assert order[-1] == "opposite" and cosines[-1] == pytest.approx(-1.0, abs=1e-3), (order, cosines)
    TRIED["newcomer"] = TRIED.get("newcomer", 0) + 1


# -- a full disk: HUB_HOME on a small tmpfs, in a user+mount namespace (no root needed) ---------

_FULL_DISK = r"""
import json, os, subprocess, sys
home, adapter, big = sys.argv[1:4]
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3M", "tmpfs", home], check=True)
env = dict(os.environ, HUB_HOME=home)
hub = lambda *a: subprocess.run([sys.executable, "-m", "hub", *a], capture_output=True, text=True, env=env)
out = {"first": hub("add", adapter, "--name", "small").returncode}
from tests.helpers import registry_snapshot, tree_snapshot
from pathlib import Path
before = [registry_snapshot(Path(home)), tree_snapshot(Path(home))]
filler = os.path.join(home, "filler")


def fill(leave: int) -> None:
    with open(filler, "ab") as fh:
        while True:
            free = os.statvfs(home).f_bavail * os.statvfs(home).f_frsize
            if free <= leave:
                return
            try:
                fh.write(b"\0" * min(65536, max(4096, free - leave)))
                fh.flush()
            except OSError:
                return


fill(200 << 10)                       # room for SQLite's WAL, not for the adapter
add = hub("add", big, "--name", "big")
lst = hub("list")
fill(0)                               # the last block
full_list = hub("list")
os.unlink(filler)
after = [registry_snapshot(Path(home)), tree_snapshot(Path(home))]
out.update(add=[add.returncode, add.stderr], list=[lst.returncode, lst.stdout, lst.stderr],
           full_list=[full_list.returncode, full_list.stderr], unchanged=before == after)
print(json.dumps(out))
"""


def test_full_disk_during_add_names_the_disk_not_the_source(artifacts, tmp_path):
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is not installed")
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"user namespaces are not available here: {probe.stderr.decode().strip()}")
    from hub.demo.factory import make_adapter

    big = make_adapter(artifacts.base("llama"), tmp_path / "big", seed=7, r=64, lora_alpha=64,
                       target_modules="all-linear")
    assert sum(f.stat().st_size for f in big.iterdir()) > 400 << 10
    home = tmp_path / "hub-on-tmpfs"
    home.mkdir()
    env = dict(os.environ)
    env.pop("HUB_DATABASE_URL", None) if not os.environ.get("HUB_TEST_DATABASE_URL") else None
    proc = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", sys.executable, "-c", _FULL_DISK,
                           str(home), str(artifacts["plain"][1]), str(big)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["first"] == 0
    code, err = out["add"]
    assert code == 1 and err.count("\n") == 1, err
    assert "no space left on the device" in err and str(home) in err and "cannot read" not in err, err
    assert str(big) not in err                    # the source is fine: the disk it writes to is full
    code, stdout, err = out["list"]
    assert code == 0 and "small" in stdout, (code, stdout, err)
    code, err = out["full_list"]
    if os.environ.get("HUB_TEST_DATABASE_URL"):   # the registry is on the server, not on the full disk
        assert code == 0 and "server" not in err, err
    else:
        assert code == 1 and "disk holding the registry database is full" in err and "server" not in err, err
    assert out["unchanged"]
    TRIED["full disk"] = TRIED.get("full disk", 0) + 3


def test_report_cases_tried():
    print(f"\neveryday safety: {sum(TRIED.values())} refusals tried: " +
          ", ".join(f"{k} {v}" for k, v in sorted(TRIED.items())))
