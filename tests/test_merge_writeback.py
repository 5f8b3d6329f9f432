"""Early writeout of merged shards (hub.merge.writeback): every byte of every shard is handed to
sync_file_range once, in whole pages and in order, by a thread of its own that closes what it
was given; a failed merge drops the ranges not yet started and leaves no file or descriptor
behind. (It cannot change a byte: tests/test_merge.py and test_merge_stream.py compare them.)"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest
import torch

import hub.merge.writeback as writeback
import hub.merge.writer as writer
from hub.errors import HubError
from hub.merge import merge

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/fd")


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def wait_for_writeback_threads() -> None:
    for thread in threading.enumerate():
        if thread.name == "hub-merge-writeback":
            thread.join(60)
            assert not thread.is_alive()


@pytest.fixture
def ranges(monkeypatch):
    """Record (file name, offset, bytes) of every started writeout; the real call still runs."""
    seen: list[tuple[str, int, int]] = []
    real = writeback.sync_file_range()

    def record(fd, offset, nbytes, flags):
        seen.append((os.path.basename(os.readlink(f"/proc/self/fd/{fd}")), offset, nbytes))
        return real(fd, offset, nbytes, flags) if real is not None else 0

    monkeypatch.setattr(writeback, "sync_file_range", lambda: record)
    monkeypatch.setattr(writer, "FLUSH_BYTES", 3 * writeback.PAGE)   # many ranges even for a tiny model
    return seen


def test_every_byte_of_every_shard_is_written_out_once_in_whole_pages(artifacts, tmp_path, ranges):
    base, adapter = artifacts["all_linear"]
    before = open_fds()
    result = merge(base, [(adapter, 1.0)], tmp_path / "out", device="cpu", shard_size="40KB")
    wait_for_writeback_threads()
    assert open_fds() == before
    assert len(result.shards) > 1
    for shard in result.shards:
        size = (tmp_path / "out" / shard).stat().st_size
        mine = [(offset, n) for name, offset, n in ranges if name == shard]
        assert mine and mine[0][0] == 0, shard
        assert all(a + n == b for (a, n), (b, _) in zip(mine, mine[1:])), mine     # contiguous, in order
        assert mine[-1][0] + mine[-1][1] == size
        assert all((offset + n) % writeback.PAGE == 0 for offset, n in mine[:-1])


def test_a_failed_merge_leaves_no_file_and_no_descriptor(artifacts, tmp_path, ranges):
    from hub.demo.factory import make_base

    _, adapter = artifacts["plain"]
    base = tmp_path / "base-fp16"
    make_base("llama", base, dtype=torch.float16)
    before = open_fds()
    with pytest.raises(HubError, match="too large for float16"):
        merge(base, [(adapter, 1e9)], tmp_path / "out", device="cpu")
    wait_for_writeback_threads()
    assert open_fds() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base-fp16"]


def test_an_abandoned_writeback_starts_nothing_more_and_closes_what_it_holds(tmp_path):
    entered, release = threading.Event(), threading.Event()
    started = []

    def held(fd, offset, nbytes, flags):
        started.append(offset)
        entered.set()
        release.wait(60)
        return 0

    path = tmp_path / "f"
    path.write_bytes(b"x" * 4 * writeback.PAGE)
    before = open_fds()
    wb = writeback.Writeback(call=held)
    with open(path, "rb") as fh:
        fd = wb.track(fh.fileno())
    for k in range(4):
        wb.written(fd, k * writeback.PAGE, writeback.PAGE)
    wb.release(fd)
    assert entered.wait(60)
    wb.finish(abandon=True)
    wb.written(fd, 0, writeback.PAGE)      # after finish: ignored
    release.set()
    wb.thread.join(60)
    assert not wb.thread.is_alive()
    assert started == [0]
    assert open_fds() == before


def test_without_sync_file_range_nothing_is_started_and_descriptors_are_still_closed(tmp_path, monkeypatch):
    monkeypatch.setattr(writeback, "sync_file_range", lambda: None)
    path = Path(tmp_path / "f")
    path.write_bytes(b"x" * writeback.PAGE)
    before = open_fds()
    with writeback.Writeback() as wb, open(path, "rb") as fh:
        fd = wb.track(fh.fileno())
        wb.written(fd, 0, writeback.PAGE)
        wb.release(fd)
    wb.thread.join(60)
    assert wb.started == 0 and open_fds() == before
