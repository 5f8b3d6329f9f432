"""The bytes of a safetensors file, laid out as the safetensors library lays them out, as a
sequence of buffers: whoever writes them can hash and check each buffer on its way to the
disk (hub.inspect.inspect_stream), so nothing written has to be read back.

The library sorts tensors by dtype (its ``Dtype`` enum, descending) and then by name, writes
the header as compact JSON (``__metadata__`` first, then the tensors in file order), pads it
with spaces to a multiple of 8 bytes and puts the length in front. It writes ``__metadata__``
in its hash map's order, which differs from run to run; here the keys are sorted, one of the
orders it writes, so the same tensors always give the same file (and the same sha256).
tests/unit/test_safetensors_layout_units.py holds the bytes to the library's own.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Iterator

from hub.formats.safetensors_header import DTYPE_SIZES

# safetensors' Dtype enum in declaration order (files hold tensors in descending order of it)
DTYPE_ORDER = ("BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0",
               "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64")
_RANK = {dtype: i for i, dtype in enumerate(DTYPE_ORDER)}


@dataclass(frozen=True)
class Tensor:
    """One tensor to write: its little-endian bytes, C order (any buffer: a memoryview of an array)."""
    name: str
    dtype: str
    shape: tuple[int, ...]
    data: memoryview


@dataclass(frozen=True)
class Layout:
    head: bytes                 # the 8-byte length and the padded header JSON
    tensors: list[Tensor]       # in file order

    @property
    def size(self) -> int:
        return len(self.head) + sum(t.data.nbytes for t in self.tensors)

    def buffers(self) -> Iterator[memoryview]:
        """The file's bytes in order: the head, then each tensor's data."""
        yield memoryview(self.head)
        for t in self.tensors:
            yield t.data


def layout(tensors: list[Tensor], metadata: dict[str, str] | None = None) -> Layout:
    ordered = sorted(tensors, key=lambda t: (-_RANK[t.dtype], t.name))
    header: dict = {} if metadata is None else {"__metadata__": dict(sorted(metadata.items()))}
    offset = 0
    for t in ordered:
        if t.name in header:
            raise ValueError(f"tensor name {t.name!r} given twice")
        size = math.prod(t.shape) * DTYPE_SIZES[t.dtype]
        if t.data.nbytes != size:
            raise ValueError(f"{t.name}: {t.data.nbytes} bytes given for shape {list(t.shape)} of {t.dtype}")
        header[t.name] = {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    raw += b" " * (-len(raw) % 8)
    return Layout(len(raw).to_bytes(8, "little") + raw, ordered)
