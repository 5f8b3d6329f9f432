"""The steps of benchmarks/gpu/run.sh that need Python (run.sh orchestrates them).

    anchor WORK                      build the 1.1 B anchor and its all-linear r16 adapter (benchmarks/merge)
    disk-rate FOLDER                 read every shard cold (pages dropped with fadvise) and warm: MB/s
    h2d-rate DEVICE [--mib N]        host-to-device copy rate, pageable and pinned: MB/s
    peft BASE ADAPTER OUT DEVICE     PEFT: load in bf16 on DEVICE, merge_and_unload, save (prints the time)
    hub-merge BASE ADAPTER OUT DEVICE  `hub merge --device DEVICE --json` as a fresh process, timed
    compare A B --label L            tensor by tensor: bit-identical count, max |diff| in bf16 ulps;
                                     exits 1 past --max-ulps
    summary                          the table of every step above; exits 1 if any check failed

Every step prints one JSON line and appends it to $HUB_GPU_RESULTS, which `summary` reads.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks" / "merge"))


def emit(row: dict) -> None:
    line = json.dumps(row)
    print(line, flush=True)
    if os.environ.get("HUB_GPU_RESULTS"):
        with open(os.environ["HUB_GPU_RESULTS"], "a") as fh:
            fh.write(line + "\n")


def anchor(work: Path) -> None:
    from bench_merge import make_adapter, synth_base   # the builder benchmarks/merge uses

    start = time.perf_counter()
    base = synth_base(work / "synth1b")
    adapter = make_adapter(base, work / "adapter-all-linear", "all-linear")
    emit({"step": "anchor", "base": str(base), "adapter": str(adapter), "seconds": time.perf_counter() - start,
          "base_bytes": sum(p.stat().st_size for p in base.glob("*.safetensors"))})


def _shards(folder: Path) -> list[Path]:
    shards = sorted(folder.glob("*.safetensors"))
    if not shards:
        sys.exit(f"gpu_bench: no *.safetensors in {folder}")
    return shards


def _read_all(paths: list[Path], cold: bool) -> tuple[int, float]:
    if cold:   # drop the files' clean pages first, so the timed read comes from the disk
        for p in paths:
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
    total, buf, start = 0, bytearray(1 << 24), time.perf_counter()
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            while n := os.readv(fd, [buf]):
                total += n
        finally:
            os.close(fd)
    return total, time.perf_counter() - start


def disk_rate(folder: Path) -> None:
    shards = _shards(folder)
    cold_bytes, cold_s = _read_all(shards, cold=True)
    warm_bytes, warm_s = _read_all(shards, cold=False)
    emit({"step": "disk-rate", "bytes": cold_bytes, "cold_mb_s": cold_bytes / cold_s / 1e6,
          "warm_mb_s": warm_bytes / warm_s / 1e6})


def h2d_rate(device: str, mib: int) -> None:
    import torch

    if not device.startswith("cuda"):
        emit({"step": "h2d-rate", "skipped": f"device {device} is not CUDA"})
        return
    n = mib << 20
    rows = {}
    for label, pinned in (("pageable", False), ("pinned", True)):
        host = torch.empty(n, dtype=torch.uint8, pin_memory=pinned)
        host.fill_(1)
        dev = torch.empty(n, dtype=torch.uint8, device=device)
        dev.copy_(host, non_blocking=pinned)   # warm-up: context, allocator
        torch.cuda.synchronize(device)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            dev.copy_(host, non_blocking=pinned)
            torch.cuda.synchronize(device)
            best = min(best, time.perf_counter() - start)
        rows[f"{label}_mb_s"] = n / best / 1e6
        del host, dev
    emit({"step": "h2d-rate", "mib": mib, **rows, "gpu": torch.cuda.get_device_name(device)})


def peft(base: Path, adapter: Path, out: Path, device: str) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    start = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16, device_map=device)
    model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    model.save_pretrained(out)
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
    emit({"step": "peft", "device": device, "seconds": time.perf_counter() - start})


def hub_merge(base: Path, adapter: Path, out: Path, device: str) -> None:
    import subprocess

    cmd = [sys.executable, "-m", "hub", "merge", "--base", str(base), str(adapter), "--out", str(out),
           "--device", device, "--name", f"gpu-bench-{device}-{os.getpid()}", "--json"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"gpu_bench: `{' '.join(cmd)}` exited {proc.returncode}")
    result = json.loads(proc.stdout)["result"]
    emit({"step": "hub-merge", "device": result["device"], "wall_s": wall, "engine_s": result["seconds"],
          "bytes_read": result["bytes_read"], "bytes_written": result["bytes_written"],
          "tensors_touched": result["tensors_touched"]})


def summary(path: Path) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    by = {}
    for r in rows:
        by.setdefault(r["step"], []).append(r)
    mb = lambda v: f"{v:,.0f} MB/s"  # noqa: E731
    disk = by.get("disk-rate", [{}])[-1]
    h2d = by.get("h2d-rate", [{}])[-1]
    print("\n=== hub merge on the 1.1 B anchor: summary ===")
    if disk:
        print(f"disk read        cold {mb(disk['cold_mb_s'])}, warm (page cache) {mb(disk['warm_mb_s'])} "
              f"over {disk['bytes'] / 1e9:.2f} GB")
    if "pinned_mb_s" in h2d:
        print(f"host -> device   pinned {mb(h2d['pinned_mb_s'])}, pageable {mb(h2d['pageable_mb_s'])} "
              f"({h2d['gpu']})")
    else:
        print(f"host -> device   not measured: {h2d.get('skipped', 'no step ran')}")
    for r in by.get("hub-merge", []):
        rate = r["bytes_read"] / r["engine_s"] / 1e6
        vs = [f"{rate / disk['cold_mb_s']:.2f}x cold disk" if disk else "",
              f"{rate / disk['warm_mb_s']:.2f}x warm read" if disk else "",
              f"{rate / h2d['pinned_mb_s']:.2f}x pinned H2D" if "pinned_mb_s" in h2d else ""]
        print(f"hub {r['device']:<12} {r['wall_s']:6.1f} s wall, {r['engine_s']:6.1f} s engine, {mb(rate)} of base "
              f"read ({', '.join(v for v in vs if v)})")
    for r in by.get("peft", []):
        print(f"peft {r['device']:<11} {r['seconds']:6.1f} s (load + merge_and_unload + save, in process)")
    failed = []
    for r in by.get("compare", []):
        verdict = "ok" if r["ok"] else "FAILED"
        print(f"equal? {r['label']:<28} {verdict}: {r['bit_identical']}/{r['tensors']} tensors bit-identical, "
              f"max {r['max_ulps']:.2f} bf16 ulps (allowed {r['allowed_ulps']:g}), max |diff| {r['max_abs_diff']:.3g}"
              + (f", mismatched {r['mismatched']}" if r["mismatched"] else ""))
        if not r["ok"]:
            failed.append(r["label"])
    if not by.get("compare"):
        failed.append("no comparison ran")
    print(f"RESULT: {'FAIL (' + ', '.join(failed) + ')' if failed else 'PASS'}")
    if failed:
        sys.exit(1)


def _index(folder: Path) -> dict[str, str]:
    from safetensors import safe_open

    idx = folder / "model.safetensors.index.json"
    if idx.is_file():
        return json.loads(idx.read_text())["weight_map"]
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        return {k: "model.safetensors" for k in f.keys()}


def compare(a: Path, b: Path, label: str, max_ulps: float) -> None:
    """max |a - b| per element in units of the bf16 spacing at max(|a|, |b|) (2^-7 relative)."""
    import torch
    from safetensors import safe_open

    ia, ib = _index(a), _index(b)
    missing = sorted(set(ia) ^ set(ib))
    same = n = 0
    worst_ulps, worst_abs, worst_name = 0.0, 0.0, ""
    for name in sorted(set(ia) & set(ib)):
        with safe_open(str(a / ia[name]), "pt") as fa, safe_open(str(b / ib[name]), "pt") as fb:
            ta, tb = fa.get_tensor(name), fb.get_tensor(name)
        n += 1
        if ta.shape != tb.shape or ta.dtype != tb.dtype:
            missing.append(f"{name}: {tuple(ta.shape)} {ta.dtype} vs {tuple(tb.shape)} {tb.dtype}")
            continue
        if torch.equal(ta, tb):
            same += 1
            continue
        fa32, fb32 = ta.float(), tb.float()
        diff = (fa32 - fb32).abs()
        spacing = torch.maximum(fa32.abs(), fb32.abs()).clamp_min(torch.finfo(torch.bfloat16).tiny) * 2.0 ** -7
        ulps = float((diff / spacing).max())
        if ulps > worst_ulps:
            worst_ulps, worst_abs, worst_name = ulps, float(diff.max()), name
    ok = not missing and worst_ulps <= max_ulps
    emit({"step": "compare", "label": label, "tensors": n, "bit_identical": same, "max_ulps": worst_ulps,
          "max_abs_diff": worst_abs, "worst_tensor": worst_name, "allowed_ulps": max_ulps,
          "mismatched": missing[:5], "ok": ok})
    if not ok and not os.environ.get("HUB_GPU_RESULTS"):   # run.sh fails in its summary, after every step
        sys.exit(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("anchor")
    s.add_argument("work", type=Path)
    s = sub.add_parser("disk-rate")
    s.add_argument("folder", type=Path)
    s = sub.add_parser("h2d-rate")
    s.add_argument("device")
    s.add_argument("--mib", type=int, default=1024)
    s = sub.add_parser("peft")
    for arg in ("base", "adapter", "out"):
        s.add_argument(arg, type=Path)
    s.add_argument("device")
    s = sub.add_parser("hub-merge")
    for arg in ("base", "adapter", "out"):
        s.add_argument(arg, type=Path)
    s.add_argument("device")
    s = sub.add_parser("summary")
    s.add_argument("results", type=Path)
    s = sub.add_parser("compare")
    s.add_argument("a", type=Path)
    s.add_argument("b", type=Path)
    s.add_argument("--label", required=True)
    s.add_argument("--max-ulps", type=float, default=0.0)
    args = ap.parse_args()
    if args.cmd == "anchor":
        anchor(args.work)
    elif args.cmd == "disk-rate":
        disk_rate(args.folder)
    elif args.cmd == "h2d-rate":
        h2d_rate(args.device, args.mib)
    elif args.cmd == "peft":
        peft(args.base, args.adapter, args.out, args.device)
    elif args.cmd == "hub-merge":
        hub_merge(args.base, args.adapter, args.out, args.device)
    elif args.cmd == "summary":
        summary(args.results)
    else:
        compare(args.a, args.b, args.label, args.max_ulps)


if __name__ == "__main__":
    main()
