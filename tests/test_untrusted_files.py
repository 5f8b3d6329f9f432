"""Recipes, configs and model cards from files hub does not control: YAML alias bombs and
self-references refused, FIFOs and devices never block, huge files never read; one line,
bounded time, nothing changed."""

from __future__ import annotations

import os

import pytest

from hub import safe_yaml
from tests.helpers import copy_adapter, registry_state, run_cli, run_cli_bounded

# 9 levels of 9 aliases: 9**9 = 387 million strings once expanded (1 KB of text)
BOMB = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
SELF = "method: linear\nparents: &p [{name: a, weight: 1}, *p]\n"






def test_safe_yaml_bounds_expansion_and_keeps_ordinary_aliases():
    with pytest.raises(safe_yaml.YAMLTooLarge):
        safe_yaml.load(BOMB)
    with pytest.raises(safe_yaml.YAMLTooLarge):
        safe_yaml.load(SELF)
    with pytest.raises(safe_yaml.YAMLTooLarge):
        safe_yaml.load("[" * 5000 + "]" * 5000)
    doc = safe_yaml.load("rule: &r {factor: 0.5, layers: [0, 3]}\nlayer_weights: [*r, *r]\n")
    assert doc["layer_weights"] == [{"factor": 0.5, "layers": [0, 3]}] * 2


@pytest.fixture
def seeded(artifacts, hub_home):
    assert run_cli("add", artifacts["plain"][1], "--name", "a").exit_code == 0
    assert run_cli("add", artifacts["rslora"][1], "--name", "b").exit_code == 0
    return registry_state(hub_home)


def _recipe_fifo(path):
    os.mkfifo(path)


def _recipe_bomb(path):
    path.write_text("method: linear\nname: bomb\nparents: [{name: a, weight: 0.5}, {name: b, weight: 0.5}]\n"
                    + BOMB.replace("a:", "xa:", 1))


def _recipe_self(path):
    path.write_text(SELF.replace("name: a", "name: a"))


def _recipe_huge(path):
    with open(path, "w") as out:
        out.write("method: linear\n# " + "x" * (2 << 20) + "\n")


def _recipe_device(path):
    os.symlink("/dev/zero", path)


RECIPES = [_recipe_fifo, _recipe_bomb, _recipe_self, _recipe_huge, _recipe_device]   # a folder: click says so


@pytest.mark.parametrize("make", RECIPES, ids=lambda f: f.__name__[8:])
def test_hostile_recipe_refused_in_one_line(seeded, hub_home, tmp_path, make):
    path = tmp_path / "recipe.yaml"
    make(path)
    around = sorted(p.name for p in tmp_path.iterdir())
    result = run_cli_bounded("combine", "--recipe", path)
    line = result.stderr.strip()
    assert result.exit_code == 2, result.stderr
    assert line.startswith("hub: error:") and "\n" not in line and "recipe" in line, result.stderr
    assert registry_state(hub_home) == seeded
    assert sorted(p.name for p in tmp_path.iterdir()) == around


def test_config_swapped_for_fifo_never_blocks(artifacts, tmp_path, hub_home):
    folder = copy_adapter(artifacts["plain"][1], tmp_path / "fifo-config")
    (folder / "adapter_config.json").unlink()
    os.mkfifo(folder / "adapter_config.json")
    run_cli("list")
    before = registry_state(hub_home)
    result = run_cli_bounded("add", folder)
    assert result.exit_code == 1 and "not a regular file" in result.stderr
    assert registry_state(hub_home) == before


def test_model_card_alias_bomb_is_ignored_not_expanded():
    from hub.sync.model_card import split_card

    meta, body = split_card("---\n" + BOMB + "---\n# card\n")
    assert meta == {} and body == "# card\n"


# -- safetensors headers: bounded by what an adapter (or a base shard) can hold -------------

def _write_safetensors(path, entries: dict, data: bytes = b"", metadata: dict | None = None):
    import json
    import struct

    doc = dict(entries)
    if metadata:
        doc["__metadata__"] = metadata
    blob = json.dumps(doc, separators=(",", ":")).encode()
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(blob)) + blob + data)


def _many(n: int, shape, nbytes: int) -> dict:
    return {f"base_model.model.x.{i}.lora_A.weight": {"dtype": "BF16", "shape": shape,
                                                      "data_offsets": [i * nbytes, (i + 1) * nbytes]}
            for i in range(n)}


def _adapter_with(tmp_path, artifacts, name, entries, data=b"", metadata=None):
    folder = copy_adapter(artifacts["plain"][1], tmp_path / name)
    _write_safetensors(folder / "adapter_model.safetensors", entries, data, metadata)
    return folder


@pytest.fixture
def registry(artifacts, hub_home):
    assert run_cli("add", artifacts["rslora"][1], "--name", "existing").exit_code == 0
    return registry_state(hub_home)


def test_adapter_with_zero_size_tensor_refused(artifacts, tmp_path, hub_home, registry):
    import json
    import struct

    folder = copy_adapter(artifacts["plain"][1], tmp_path / "empty-tensor")
    raw = (folder / "adapter_model.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    end = max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__")
    header["base_model.model.model.layers.0.self_attn.q_proj.lora_E.weight"] = {
        "dtype": "F32", "shape": [0, 64], "data_offsets": [end, end]}
    _write_safetensors(folder / "adapter_model.safetensors", header, raw[8 + n:])
    result = run_cli_bounded("add", folder)
    assert result.exit_code == 1 and "holds no values" in result.stderr, result.stderr
    assert registry_state(hub_home) == registry


def test_adapter_header_with_too_many_tensors_refused(artifacts, tmp_path, hub_home, registry):
    n = 200_001
    folder = _adapter_with(tmp_path, artifacts, "many", _many(n, [1], 2), b"\0\0" * n)
    result = run_cli_bounded("add", folder)
    assert result.exit_code == 1 and "more than 200,000 tensors" in result.stderr, result.stderr
    assert registry_state(hub_home) == registry


def test_adapter_header_larger_than_an_adapter_needs_refused(artifacts, tmp_path, hub_home, registry):
    folder = _adapter_with(tmp_path, artifacts, "padded", _many(2, [1], 2), b"\0" * 4,
                           metadata={"pad": "x" * (33 << 20)})
    result = run_cli_bounded("add", folder)
    assert result.exit_code == 1 and "larger than an adapter header may be" in result.stderr, result.stderr
    assert registry_state(hub_home) == registry


def test_base_header_has_its_own_larger_bound(artifacts, tmp_path, hub_home, registry):
    """The 1.55 M zero-size tensor header of the issue, as a base model shard (scaled to just past
    the bound): refused while parsing, without building a table for every entry."""
    import shutil

    base = tmp_path / "hostile-base"
    base.mkdir()
    shutil.copyfile(artifacts["plain"][0] / "config.json", base / "config.json")
    _write_safetensors(base / "model.safetensors", _many(300_001, [0], 0))
    result = run_cli_bounded("base", "add", base)
    assert result.exit_code != 0 and "more than 300,000 tensors" in result.stderr, result.stderr
    assert registry_state(hub_home) == registry


@pytest.mark.parametrize("victim,swap", [("config.json", "fifo"), ("config.json", "zero"),
                                         ("model.safetensors", "fifo")])
def test_base_model_json_files_never_block(artifacts, tmp_path, hub_home, registry, victim, swap):
    import shutil

    base = tmp_path / "base"
    shutil.copytree(artifacts["plain"][0], base)
    target = base / victim
    target.unlink(missing_ok=True)
    if swap == "fifo":
        os.mkfifo(target)
    else:
        os.symlink("/dev/zero", target)
    result = run_cli_bounded("base", "add", base)
    line = result.stderr.strip()
    assert result.exit_code != 0 and line.startswith("hub: error:") and "\n" not in line, result.stderr
    assert "regular file" in line, line
    assert registry_state(hub_home) == registry
