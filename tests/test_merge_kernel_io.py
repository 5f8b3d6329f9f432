"""Early writeout of merged shards (hub.merge.kernel_io): every byte of every shard is handed to
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

import hub.merge.kernel_io as kernel_io
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
    real = kernel_io.sync_file_range()

    def record(fd, offset, nbytes, flags):
        seen.append((os.path.basename(os.readlink(f"/proc/self/fd/{fd}")), offset, nbytes))
        return real(fd, offset, nbytes, flags) if real is not None else 0

    monkeypatch.setattr(kernel_io, "sync_file_range", lambda: record)
    monkeypatch.setattr(writer, "FLUSH_BYTES", 3 * kernel_io.PAGE)   # many ranges even for a tiny model
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
        assert all((offset + n) % kernel_io.PAGE == 0 for offset, n in mine[:-1])


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
    path.write_bytes(b"x" * 4 * kernel_io.PAGE)
    before = open_fds()
    wb = kernel_io.Writeback(call=held)
    with open(path, "rb") as fh:
        fd = wb.track(fh.fileno())
    for k in range(4):
        wb.written(fd, k * kernel_io.PAGE, kernel_io.PAGE)
    wb.release(fd)
    assert entered.wait(60)
    wb.finish(abandon=True)
    wb.written(fd, 0, kernel_io.PAGE)      # after finish: ignored
    release.set()
    wb.thread.join(60)
    assert not wb.thread.is_alive()
    assert started == [0]
    assert open_fds() == before


def test_without_sync_file_range_nothing_is_started_and_descriptors_are_still_closed(tmp_path, monkeypatch):
    monkeypatch.setattr(kernel_io, "sync_file_range", lambda: None)
    path = Path(tmp_path / "f")
    path.write_bytes(b"x" * kernel_io.PAGE)
    before = open_fds()
    with kernel_io.Writeback() as wb, open(path, "rb") as fh:
        fd = wb.track(fh.fileno())
        wb.written(fd, 0, kernel_io.PAGE)
        wb.release(fd)
    wb.thread.join(60)
    assert wb.started == 0 and open_fds() == before


# -- a full disk: the output on a small tmpfs, in a user+mount namespace (no root needed) ----------

_FULL_DISK = r"""
import errno, json, os, subprocess, sys
disk, base, adapter, home = sys.argv[1:5]
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64K", "tmpfs", disk], check=True)
from hub.merge.kernel_io import preallocate
out = {}
with open(os.path.join(disk, "probe"), "wb") as fh:
    try:
        preallocate(fh.fileno(), 1 << 20)
        out["preallocate"] = "no error"
    except OSError as exc:
        out["preallocate"] = errno.errorcode[exc.errno]
    out["probe_size"] = os.fstat(fh.fileno()).st_size
os.unlink(os.path.join(disk, "probe"))
env = dict(os.environ, HUB_HOME=home)
proc = subprocess.run([sys.executable, "-m", "hub", "merge", "--base", base, adapter, "--out",
                       os.path.join(disk, "merged"), "--device", "cpu"], capture_output=True, text=True, env=env)
out.update(code=proc.returncode, stderr=proc.stderr, left=sorted(os.listdir(disk)))
print(json.dumps(out))
"""


def test_a_full_disk_is_refused_before_the_merge_writes_and_nothing_is_left(artifacts, tmp_path):
    import json
    import shutil
    import subprocess

    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is not installed")
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"user namespaces are not available here: {probe.stderr.decode().strip()}")
    base, adapter = artifacts["plain"]
    assert sum(f.stat().st_size for f in Path(base).iterdir()) > 256 << 10
    disk = tmp_path / "small-disk"
    disk.mkdir()
    proc = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", sys.executable, "-c", _FULL_DISK,
                           str(disk), str(base), str(adapter), str(tmp_path / "home")],
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["preallocate"] == "ENOSPC" and out["probe_size"] == 0, out
    assert out["code"] == 1 and out["stderr"].count("\n") == 1, out["stderr"]
    assert "no space left on the device" in out["stderr"], out["stderr"]
    assert out["left"] == [], out["left"]
