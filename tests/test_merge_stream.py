"""The streamed merge path: weights folded in row pieces (hub.merge.pipeline) and cache-sized
blocks (hub.merge.device_io.HostIO, the CPU stand-in of the CUDA path) give the same bytes as
one piece and one block; overflow is still refused; CUDA code stays in one module.
(Equality with PEFT's merge_and_unload for every adapter kind: tests/test_merge.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import hub.merge.device_io as device_io
from hub.errors import HubError
from hub.merge import build_plan, execute, merge

REPO = Path(__file__).resolve().parents[1]


def shard_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.safetensors"))}


@pytest.fixture
def fold_calls(monkeypatch):
    """Count the pieces HostIO folds (the real method runs)."""
    calls = []
    real = device_io.HostIO.fold

    def counted(self, rows, row0, terms):
        calls.append((row0, rows.shape[0]))
        return real(self, rows, row0, terms)

    monkeypatch.setattr(device_io.HostIO, "fold", counted)
    return calls


def bf16_base(tmp_path: Path, kind: str = "llama") -> Path:
    from hub.demo.factory import make_base

    base = tmp_path / f"base-{kind}-bf16"
    make_base(kind, base, dtype=torch.bfloat16)
    return base


@pytest.mark.parametrize("kind", ["all_linear", "embedding", "gpt2", "patterns", "bf16", "two"])
def test_row_pieces_and_cache_blocks_do_not_change_a_byte(artifacts, tmp_path, monkeypatch, fold_calls, kind):
    if kind == "bf16":
        _, adapter = artifacts["all_linear"]
        inputs = [(adapter, 1.0)]
        base = bf16_base(tmp_path)
    elif kind == "two":
        base, a = artifacts["plain"]
        inputs = [(a, 0.7), (artifacts["patterns"][1], -0.4)]
    else:
        base, adapter = artifacts[kind]
        inputs = [(adapter, 1.0)]
    plan = build_plan(base, inputs, shard_size="40KB")
    execute(plan, tmp_path / "whole", device="cpu")
    whole_pieces = len(fold_calls)
    assert whole_pieces > 0, "no tensor took the streamed path"
    # pieces and blocks of the least rows that keep BLAS tiles whole: every boundary case of both loops
    monkeypatch.setattr(device_io, "SUB_BLOCK_BYTES", 1)
    monkeypatch.setattr(device_io, "ROW_ALIGN", device_io.SUB_ALIGN)
    execute(build_plan(base, inputs, shard_size="40KB"), tmp_path / "pieces", device="cpu", piece_bytes=1000)
    assert len(fold_calls) - whole_pieces > whole_pieces
    assert any(row0 > 0 for row0, _ in fold_calls)
    ours, ref = shard_bytes(tmp_path / "pieces"), shard_bytes(tmp_path / "whole")
    assert len(ref) > 1 and ours == ref


def test_host_fold_equals_the_whole_tensor_fold_in_fp32_and_rounds_once():
    g = torch.Generator().manual_seed(3)
    w = (torch.randn(150, 53, generator=g) * 0.02).bfloat16()
    b, a = torch.randn(150, 5, generator=g), torch.randn(5, 53, generator=g)
    expected = w.float().addmm_(b, a, alpha=0.75).bfloat16()
    rows = w.clone()
    io = device_io.HostIO(sub_block_bytes=1)      # blocks of SUB_ALIGN rows, the last one short
    assert io.wait(io.fold(rows[48:], 48, [(b, a, 0.75)]))
    assert torch.equal(rows[48:].view(torch.int16), expected[48:].view(torch.int16))
    assert torch.equal(rows[:48], w[:48])


def test_overflow_in_a_streamed_weight_is_refused_and_nothing_is_written(artifacts, tmp_path, fold_calls):
    from hub.demo.factory import make_base

    _, adapter = artifacts["plain"]
    base = tmp_path / "base-fp16"
    make_base("llama", base, dtype=torch.float16)
    with pytest.raises(HubError, match="too large for float16"):
        merge(base, [(adapter, 1e9)], tmp_path / "out", device="cpu")
    assert fold_calls and not (tmp_path / "out").exists()


def test_a_base_that_already_holds_inf_is_merged_as_it_is(tmp_path):
    w = torch.full((4, 6), 1.0, dtype=torch.float16)
    w[1, 2] = float("inf")
    io = device_io.HostIO()
    b, a = torch.ones(4, 2), torch.ones(2, 6)
    assert io.wait(io.fold(w, 0, [(b, a, 1.0)]))
    assert torch.isinf(w[1, 2]) and w[0, 0] == 3
    huge = torch.ones(4, 6, dtype=torch.float16)
    assert not io.wait(io.fold(huge, 0, [(b, a, 1e6)]))


@pytest.mark.parametrize("delta, checked, ok", [(7.9, False, True), (8.1, True, True), (20.0, True, False)])
def test_the_overflow_check_is_skipped_only_where_no_value_can_overflow(monkeypatch, delta, checked, ok):
    """fp16's largest value plus a delta under half its last ulp (16) rounds back to it: a delta
    bound (doubled for rounding) under 16 skips the per-block check; above it the check runs."""
    calls = []
    real = device_io._fits
    monkeypatch.setattr(device_io, "_fits", lambda acc, dtype: calls.append(1) or real(acc, dtype))
    w = torch.full((96, 8), 65504.0, dtype=torch.float16)
    left, right = torch.ones(96, 1), torch.full((1, 8), delta)
    io = device_io.HostIO()
    assert io.wait(io.fold(w, 0, [(left, right, 1.0)])) is ok
    assert bool(calls) is checked
    if ok:
        assert torch.equal(w, torch.full((96, 8), 65504.0, dtype=torch.float16))


def test_cpu_stand_in_uses_no_pinned_memory_or_streams():
    io = device_io.open_device("cpu")
    assert isinstance(io, device_io.HostIO)
    buf = io.host_buffer(64)
    assert not buf.is_pinned() and io.prepare([]) == []


def test_cuda_specifics_live_in_device_io_only():
    """Pinned buffers, streams, events and asynchronous copies: one module of the merge."""
    cuda_words = ("pin_memory", "torch.cuda.Stream", "torch.cuda.Event", "non_blocking", "record_stream",
                  "torch.cuda.stream(")
    offenders = [f"{path.name}: {word}" for path in sorted((REPO / "hub" / "merge").glob("*.py"))
                 if path.name != "device_io.py" for word in cuda_words if word in path.read_text()]
    assert offenders == []
    text = (REPO / "hub" / "merge" / "device_io.py").read_text()
    assert all(word in text for word in cuda_words)
