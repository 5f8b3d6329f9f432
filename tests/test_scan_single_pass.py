"""`hub add` reads each file once: the NaN/Inf count runs on the chunks being hashed.
Chunks may split an element (odd tensor offsets, any chunk size): the counts must still
match torch's, and the hash must match hashlib over the whole file."""

from __future__ import annotations

import hashlib
import math

import pytest
import torch
from safetensors.torch import save as st_save

from hub.formats import safetensors_header as sth

DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.float8_e5m2, torch.float8_e4m3fn)


def _tensors(seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for i, dtype in enumerate(DTYPES * 2):
        n = 3 + 5 * i  # odd sizes: later tensors start at offsets that split elements across chunks
        t = torch.randn(n, generator=gen)
        for j in torch.randint(0, n, (i % 3,), generator=gen).tolist():
            t[j] = (math.nan, math.inf, -math.inf)[j % 3]
        out[f"t{i:02d}.{str(dtype).split('.')[-1]}"] = t.to(dtype)
    out["ints"] = torch.arange(7, dtype=torch.int16)
    return out


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 1 << 20])
def test_nan_count_and_hash_in_one_pass_for_any_chunking(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(sth, "READ_CHUNK", chunk)
    tensors = _tensors(chunk)
    path = tmp_path / "x.safetensors"
    path.write_bytes(st_save(tensors))
    want = {n: int((~torch.isfinite(t.float())).sum()) for n, t in tensors.items() if t.is_floating_point()}
    want = {n: c for n, c in want.items() if c}
    assert want  # the case under test has NaN/Inf to find
    copied = bytearray()
    counts: dict[str, int] = {}
    header, digest = sth.read_header_and_hash(path, copied.extend, nonfinite=counts)
    assert counts == want
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest() and bytes(copied) == path.read_bytes()
    assert sth.nonfinite_counts(path, header) == want
