"""hub's safetensors layout (hub.formats.safetensors_layout, written by hub.combine.writer)
byte for byte against the safetensors library's own files: every dtype, names that sort
oddly, metadata with quotes, backslashes, control characters and non-ASCII text."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from safetensors.numpy import save as save_numpy
from safetensors.torch import save as save_torch

from hub.combine.arrays import NUMPY, torch_ops
from hub.combine.writer import weights_layout, write_adapter
from hub.formats.safetensors_header import ADAPTER, parse_header
from hub.formats.safetensors_layout import DTYPE_ORDER, Tensor, layout

ODD_TEXT = 'quote " backslash \\ newline \n tab \t bell \x07 unit \x1f del \x7f é ✓ 𝄞 </script>'


def joined(buffers) -> bytes:
    return b"".join(bytes(b) for b in buffers)


def _torch_tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    dtypes = [torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.int16,
              torch.int8, torch.uint8, torch.bool, torch.float8_e5m2, torch.float8_e4m3fn]
    out = {}
    for i, dtype in enumerate(dtypes):
        values = torch.randn(3, 5, generator=g) * 8
        # names whose order differs from the dtype order, and a non-contiguous tensor
        out[f"{'zyx'[i % 3]}.{i}"] = values.to(dtype) if i % 4 else values.to(dtype).t()
    out["scalar"] = torch.tensor(1.5)
    out["Ünïcode.é"] = torch.arange(4, dtype=torch.float32)
    return out


@pytest.mark.parametrize("metadata", [None, {"format": "pt"}, {"hub_recipe": ODD_TEXT}])
def test_torch_tensors_of_every_dtype_give_the_library_bytes(metadata):
    tensors = _torch_tensors()
    ours = joined(layout([Tensor(k, *torch_ops().raw(v)) for k, v in tensors.items()], metadata).buffers())
    assert ours == save_torch({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata)


def test_numpy_arrays_give_the_library_bytes():
    rng = np.random.default_rng(0)
    arrays = {"b.lora_B.weight": rng.standard_normal((7, 3)).astype(np.float32),
              "a.lora_A.weight": rng.standard_normal((3, 7)).astype(np.float16),
              "c": rng.standard_normal(5),                                      # float64
              "d": np.asfortranarray(rng.standard_normal((4, 6)).astype(np.float32)),
              "e": rng.standard_normal((2, 3)).astype(">f4")}                   # big-endian: written little
    ours = joined(layout([Tensor(k, *NUMPY.raw(v)) for k, v in arrays.items()], {"format": "pt"}).buffers())
    assert ours == save_numpy({k: np.ascontiguousarray(v, v.dtype.newbyteorder("<")) for k, v in arrays.items()},
                              metadata={"format": "pt"})


def test_several_metadata_keys_are_sorted_one_of_the_orders_the_library_writes():
    """The library writes __metadata__ in its hash map's order (it differs between processes);
    hub sorts the keys, so the same tensors always give the same bytes."""
    arrays = {"w": np.ones((2, 2), np.float32)}
    metadata = {"zeta": "1", "format": "pt", "hub_recipe": ODD_TEXT, "alpha": ""}
    ours = joined(weights_layout(arrays, metadata).buffers())
    theirs = save_numpy(arrays, metadata={"format": "pt", **metadata})
    assert len(ours) == len(theirs) and ours[-16:] == theirs[-16:]
    n = int.from_bytes(ours[:8], "little")
    assert json.loads(ours[8:8 + n]) == json.loads(theirs[8:8 + n])
    assert list(json.loads(ours[8:8 + n])["__metadata__"]) == sorted(metadata)
    header = parse_header(ours, len(ours), "x", ADAPTER)
    assert header.metadata == metadata and header.tensors["w"].shape == (2, 2)


def test_the_dtype_order_is_the_library_order():
    tensors = {f"t{i}": torch.zeros(2, dtype=d) for i, d in enumerate(
        [torch.bool, torch.uint8, torch.int8, torch.int16, torch.float16, torch.bfloat16, torch.int32,
         torch.float32, torch.float64, torch.int64])}
    data = save_torch(tensors)
    n = int.from_bytes(data[:8], "little")
    written = [v["dtype"] for v in json.loads(data[8:8 + n]).values()]
    assert written == sorted(written, key=DTYPE_ORDER.index, reverse=True)


def test_sizes_and_names_are_checked():
    with pytest.raises(ValueError, match="bytes given"):
        layout([Tensor("a", "F32", (2, 2), memoryview(bytes(12)))])
    with pytest.raises(ValueError, match="given twice"):
        layout([Tensor("a", "F32", (1,), memoryview(bytes(4))), Tensor("a", "F16", (2,), memoryview(bytes(4)))])


def test_write_adapter_writes_the_layout(tmp_path):
    arrays = {"x.lora_A.weight": np.ones((2, 3), np.float32), "x.lora_B.weight": np.zeros((3, 2), np.float32)}
    write_adapter(tmp_path / "out", {"peft_type": "LORA", "r": 2}, arrays, {"hub_recipe": "{}"})
    data = (tmp_path / "out" / "adapter_model.safetensors").read_bytes()
    assert data == joined(weights_layout(arrays, {"hub_recipe": "{}"}).buffers())
    assert weights_layout(arrays, {"hub_recipe": "{}"}).size == len(data)


def test_a_stream_is_hashed_as_written_and_refused_when_it_disagrees_with_its_header():
    from hub.errors import InvalidSafetensors
    from hub.formats.safetensors_header import stream_header_and_hash

    arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "v": np.full(3, np.inf, np.float32)}
    lay = weights_layout(arrays)
    received: list[bytes] = []
    counts: dict[str, int] = {}
    header, digest = stream_header_and_hash(lay.buffers(), lay.size, "x", lambda b: received.append(bytes(b)),
                                            nonfinite=counts)
    assert digest == hashlib.sha256(b"".join(received)).hexdigest() and len(b"".join(received)) == lay.size
    assert counts == {"v": 3} and header.tensors["w"].shape == (2, 3)

    buffers = list(lay.buffers())
    for wrong in (buffers[:-1], [*buffers, memoryview(b"x")]):   # short, long
        with pytest.raises(InvalidSafetensors, match="bytes written"):
            stream_header_and_hash(wrong, lay.size, "x", lambda b: None)
    nothing: list = []
    with pytest.raises(InvalidSafetensors):   # a bad header: refused before anything is written
        stream_header_and_hash([memoryview(b"\x10" + bytes(7) + b"{not json}      "), *buffers[1:]], lay.size, "x",
                               nothing.append)
    assert nothing == []
