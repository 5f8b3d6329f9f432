"""safetensors header parsing on bytes built here (the format: 8-byte little-endian N, N bytes
of JSON, then the data), hostile headers included; the safetensors library agrees."""

from __future__ import annotations

import json
import struct

import pytest
from safetensors import safe_open
from safetensors.numpy import save

from hub.errors import InvalidSafetensors, UnsafeFormat
from hub.formats.safetensors_header import ADAPTER, BASE, map_tensors, parse_header


def blob(header: dict, data: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def test_a_file_written_by_safetensors_parses_the_same(tmp_path):
    import numpy as np

    data = save({"a": np.zeros((2, 3), np.float32), "b": np.ones(4, np.float16)}, metadata={"format": "pt"})
    header = parse_header(data, len(data), "x.safetensors")
    assert {n: (e.dtype, e.shape) for n, e in header.tensors.items()} == {"a": ("F32", (2, 3)), "b": ("F16", (4,))}
    assert header.metadata == {"format": "pt"}
    (tmp_path / "x.safetensors").write_bytes(data)
    with safe_open(tmp_path / "x.safetensors", "np") as f:
        assert sorted(f.keys()) == sorted(header.tensors)


def test_offsets_are_checked():
    good = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    assert parse_header(blob(good, bytes(8)), len(blob(good, bytes(8))), "f").tensors["a"].shape == (2,)
    for bad in ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 12]}},     # size disagrees with shape
                {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 800]}},    # runs past the file
                {"a": {"dtype": "XX", "shape": [2], "data_offsets": [0, 8]}},       # unknown dtype
                {"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}):
        data = blob(bad, bytes(8))
        with pytest.raises(InvalidSafetensors):
            parse_header(data, len(data), "f")


@pytest.mark.parametrize("data, words", [
    (b"\x01\x02", "too short"),
    (struct.pack("<Q", 1 << 40) + b"{}", "runs past the end"),
    (struct.pack("<Q", 5) + b"{nope", "not valid JSON"),
    (struct.pack("<Q", 2) + b"[]", ""),
])
def test_broken_headers_are_one_clear_error(data, words):
    with pytest.raises(InvalidSafetensors, match=words):
        parse_header(data, len(data), "f")


def test_duplicate_keys_are_refused():
    raw = b'{"a": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]}, "a": {}}'
    data = struct.pack("<Q", len(raw)) + raw + bytes(4)
    with pytest.raises(InvalidSafetensors, match="duplicate"):
        parse_header(data, len(data), "f")


def test_an_adapter_header_has_a_smaller_bound_than_a_base_shard():
    n = ADAPTER.max_bytes + 1
    data = struct.pack("<Q", n) + b"{" + b" " * (n - 2) + b"}"
    with pytest.raises(InvalidSafetensors, match="larger than an adapter header may be"):
        parse_header(data, len(data), "f", ADAPTER)
    assert parse_header(data, len(data), "f", BASE).tensors == {}


def test_a_pickle_is_named_as_such():
    data = b"\x80\x04\x95" + bytes(64)
    with pytest.raises(UnsafeFormat):
        parse_header(data, len(data), "adapter_model.safetensors")


def test_mapped_tensors_equal_safetensors_reader_without_copies(tmp_path):
    """map_tensors: read-only views on one memory map, equal to safetensors' numpy reader,
    also at offsets their dtype does not align; dtypes numpy lacks (BF16) get no view."""
    import numpy as np

    rng = np.random.default_rng(0)
    arrays = {"a32": rng.standard_normal((3, 5)).astype(np.float32), "h16": rng.standard_normal(3).astype(np.float16),
              "d64": rng.standard_normal((2, 2)), "i64": np.arange(3)}
    path = tmp_path / "x.safetensors"
    path.write_bytes(save(arrays))
    header, views = map_tensors(path)
    assert sorted(views) == ["a32", "d64", "h16"] and sorted(header.tensors) == sorted(arrays)
    for name, view in views.items():
        assert view.dtype == arrays[name].dtype and np.array_equal(view, arrays[name]) and not view.flags.writeable
    # hand-built: a 3-element F16 first puts the F32 at byte 6, and a BF16 tensor follows
    f16, f32 = np.array([1, 2, 3], np.float16), np.array([0.5, -2.0], np.float32)
    head = {"h": {"dtype": "F16", "shape": [3], "data_offsets": [0, 6]},
            "f": {"dtype": "F32", "shape": [2], "data_offsets": [6, 14]},
            "b": {"dtype": "BF16", "shape": [1], "data_offsets": [14, 16]}}
    path.write_bytes(blob(head, f16.tobytes() + f32.tobytes() + bytes(2)))
    header, views = map_tensors(path)
    assert sorted(views) == ["f", "h"] and np.array_equal(views["f"], f32) and np.array_equal(views["h"], f16)
    with safe_open(path, "np") as fh:
        assert np.array_equal(fh.get_tensor("f"), views["f"])


def test_mapping_refuses_what_reading_refuses(tmp_path):
    import os

    path = tmp_path / "x.safetensors"
    path.write_bytes(blob({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, bytes(8)))   # truncated
    with pytest.raises(InvalidSafetensors, match="past the end|inside the file|end of the file"):
        map_tensors(path)
    os.mkfifo(tmp_path / "fifo.safetensors")               # refused on the descriptor, never blocks
    with pytest.raises(InvalidSafetensors, match="not a regular file"):
        map_tensors(tmp_path / "fifo.safetensors")
