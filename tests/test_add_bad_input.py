"""Issue 2's bad inputs: one clear line, non-zero exit, registry and store unchanged."""

from __future__ import annotations

import json
import pickle
import struct

import pytest

from tests.helpers import copy_adapter, registry_snapshot, run_cli


@pytest.fixture()
def seeded(artifacts, hub_home):
    """A registry that already holds one adapter, so 'unchanged' means something."""
    assert run_cli("add", artifacts["plain"][1], "--name", "existing").exit_code == 0
    return registry_snapshot(hub_home)


def _config(folder):
    return json.loads((folder / "adapter_config.json").read_text())


def _write_config(folder, doc):
    (folder / "adapter_config.json").write_text(json.dumps(doc))


def _header(folder):
    raw = (folder / "adapter_model.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return raw, n, json.loads(raw[8:8 + n])


def _rewrite_header(folder, mutate):
    raw, n, header = _header(folder)
    mutate(header)
    blob = json.dumps(header).encode()
    (folder / "adapter_model.safetensors").write_bytes(struct.pack("<Q", len(blob)) + blob + raw[8 + n:])


def missing_folder(src, dst):
    return dst / "does-not-exist"


def missing_config(src, dst):
    (copy_adapter(src, dst) / "adapter_config.json").unlink()
    return dst


def invalid_json(src, dst):
    (copy_adapter(src, dst) / "adapter_config.json").write_text('{"r": 8,')
    return dst


def rank_zero(src, dst):
    copy_adapter(src, dst)
    _write_config(dst, {**_config(dst), "r": 0})
    return dst


def rank_string(src, dst):
    copy_adapter(src, dst)
    _write_config(dst, {**_config(dst), "r": "16"})
    return dst


def unknown_peft_type(src, dst):
    copy_adapter(src, dst)
    _write_config(dst, {**_config(dst), "peft_type": "SUPERLORA"})
    return dst


def truncated_safetensors(src, dst):
    copy_adapter(src, dst)
    path = dst / "adapter_model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    return dst


def overlapping_offsets(src, dst):
    copy_adapter(src, dst)

    def mutate(header):
        names = sorted(k for k in header if k != "__metadata__")
        first, second = header[names[0]], header[names[1]]
        second["data_offsets"] = [first["data_offsets"][0], first["data_offsets"][0] + second["data_offsets"][1]
                                  - second["data_offsets"][0]]
    _rewrite_header(dst, mutate)
    return dst


def offsets_overrun(src, dst):
    copy_adapter(src, dst)

    def mutate(header):
        last = max((v for k, v in header.items() if k != "__metadata__"), key=lambda v: v["data_offsets"][1])
        last["data_offsets"][1] += 4096
        last["shape"][0] += 4096 // 4 // max(1, last["shape"][1])
    _rewrite_header(dst, mutate)
    return dst


def header_larger_than_file(src, dst):
    copy_adapter(src, dst)
    path = dst / "adapter_model.safetensors"
    raw = path.read_bytes()
    path.write_bytes(struct.pack("<Q", len(raw) * 10) + raw[8:])
    return dst


def pickle_renamed(src, dst):
    copy_adapter(src, dst)
    (dst / "adapter_model.safetensors").write_bytes(pickle.dumps({"lora_A": [1.0, 2.0]}))
    return dst


def only_bin(src, dst):
    copy_adapter(src, dst)
    (dst / "adapter_model.safetensors").unlink()
    (dst / "adapter_model.bin").write_bytes(pickle.dumps({"lora_A": [1.0]}))
    return dst


def shapes_contradict_config(src, dst):
    copy_adapter(src, dst)
    _write_config(dst, {**_config(dst), "r": 16})  # tensors are rank 8
    return dst


CASES = {
    # case: (builder, words the one line must contain)
    "missing folder": (missing_folder, ["does not exist"]),
    "missing config": (missing_config, ["adapter_config.json is missing"]),
    "invalid json": (invalid_json, ["not valid JSON"]),
    "r = 0": (rank_zero, ["schema", "r:"]),
    "r = '16'": (rank_string, ["schema", "r:"]),
    "unknown peft_type": (unknown_peft_type, ["schema", "peft_type"]),
    "truncated safetensors": (truncated_safetensors, ["adapter_model.safetensors"]),
    "overlapping offsets": (overlapping_offsets, ["overlap"]),
    "offsets overrun": (offsets_overrun, ["adapter_model.safetensors"]),
    "header larger than file": (header_larger_than_file, ["header length"]),
    "pickle renamed": (pickle_renamed, ["pickle", "never unpickles"]),
    "only adapter_model.bin": (only_bin, ["pickle", "safe_serialization"]),
    "shapes contradict config": (shapes_contradict_config, ["r=16", "rank 8"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_refused_cleanly(case, artifacts, seeded, hub_home, tmp_path):
    build, words = CASES[case]
    folder = build(artifacts["plain"][1], tmp_path / "bad")
    result = run_cli("add", folder, "--name", "newcomer")
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hub: error: ")
    for word in words:
        assert word in lines[0], lines[0]
    assert result.stdout == ""
    assert registry_snapshot(hub_home) == seeded


def test_name_already_taken(artifacts, seeded, hub_home):
    result = run_cli("add", artifacts["dora"][1], "--name", "existing")
    assert result.exit_code == 1
    assert "already taken" in result.stderr and "--name" in result.stderr
    assert registry_snapshot(hub_home) == seeded


def test_second_add_of_same_content_says_so(artifacts, seeded, hub_home, tmp_path):
    again = copy_adapter(artifacts["plain"][1], tmp_path / "copy")
    result = run_cli("add", again)
    assert result.exit_code == 0
    assert "already registered as 'existing'" in result.stderr
    assert registry_snapshot(hub_home) == seeded


def test_invalid_names_are_usage_errors(artifacts, seeded, hub_home):
    for bad in ("../etc", "a;rm -rf", "tab\tname", "-dash", "x:y"):
        result = run_cli("add", artifacts["dora"][1], "--name", bad)
        assert result.exit_code == 2, bad
        assert len(result.stderr.strip().splitlines()) == 1
    assert registry_snapshot(hub_home) == seeded
