"""Run a MergePlan: a three-stage pipeline.

    reader thread ──► fold (caller's thread, on the device) ──► writer thread

Plain LoRA updates of 2-D weights (nearly every touched tensor) stream in row pieces of
PIECE_BYTES: the reader preads a piece of the base straight into a buffer of a fixed pool,
the fold turns it into the merged rows in place (hub.merge.device_io: in cache-sized blocks on
CPU, on streams on CUDA), and the writer appends it to the output shard and hands the buffer
back. Memory is the pool, whatever the model's size, and no tensor is ever held twice. Untouched
tensors are copied file-to-file in the kernel. Everything else (DoRA, replacements, casts,
quantized bases) goes through ``fold`` one tensor at a time, bounded by a byte budget.
The three threads overlap: torch's kernels and the read/write system calls release the GIL.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch

from hub.merge import maths
from hub.merge.device_io import open_device
from hub.merge.torch_loader import resolve_device
from hub.merge.plan import DEFAULT_PREFETCH_BYTES, BiasOp, LoraOp, MergePlan, TensorTask
from hub.merge.reading import (DONE, PIECE_BYTES, POOL_BYTES, TORCH_DTYPES, Budget, Loaded, Piece, Pool,
                               check_finite, get, overflow, pool_buffer_bytes, put, run_reader)
from hub.merge.quantized import Drift, measure_task
from hub.atomic import AtomicFolder
from hub.merge.kernel_io import Writeback
from hub.merge.writer import ShardStream, write_index
from hub.progress import Progress

CONFIG_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}
# files of the base folder that are weights in another format or describe only the base
SKIP_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf", ".onnx", ".safetensors")
SKIP_NAMES = ("README.md", ".gitattributes", "hub_merge.json")
LINEAGE_NAME = "hub_merge.json"



@dataclass
class MergeResult:
    out_dir: str
    device: str
    dtype: str
    tensors_total: int
    tensors_touched: int
    bytes_read: int
    bytes_written: int
    seconds: float
    shards: list[str]
    untied_embeddings: bool
    lineage: dict = field(default_factory=dict)
    drift: dict | None = None      # quantized merges: hub.merge.quantized.Drift.to_dict()

    def to_dict(self) -> dict:
        return asdict(self)


def fold(task: TensorTask, weight: torch.Tensor, op_tensors: list[dict[str, torch.Tensor]], device: str,
         owned: bool = False) -> torch.Tensor:
    """The merged value of one output tensor, computed in fp32 on ``device``, returned on CPU in the output dtype."""
    out_dtype = TORCH_DTYPES[task.out_dtype] if task.out_dtype in TORCH_DTYPES else weight.dtype
    if not task.ops:
        return weight.to(out_dtype)
    f32 = dict(device=device, dtype=torch.float32)
    base = weight.to(**f32)
    needs_base = any(isinstance(op, LoraOp) and op.magnitude_key for op in task.ops)
    # add into the loaded tensor only when it is our own buffer (a safe_open tensor may
    # share memory with the file mapping); keep the unmerged weight when DoRA needs its norms
    shares_input = base.data_ptr() == weight.data_ptr() and not owned
    acc = base.clone() if (needs_base or shares_input) else base
    for op, t in zip(task.ops, op_tensors):
        check_finite(task, op, t)
        if isinstance(op, BiasOp):
            acc += maths.bias_delta(t["bias"].to(**f32), op.scaling)
            continue
        a, b = t["A"].to(**f32), t["B"].to(**f32)
        if not op.magnitude_key and task.quantized:   # unfused, as PEFT's bitsandbytes layers add it
            acc = acc + maths.lora_delta(a, b, op.scaling, op.fan_in_fan_out)
            continue
        if not op.magnitude_key:
            maths.add_lora_delta_(acc, a, b, op.scaling, transposed=op.embedding or op.fan_in_fan_out)
            continue
        if op.embedding:
            delta = maths.embedding_delta(a, b, op.scaling)
        else:
            delta = maths.lora_delta(a, b, op.scaling, op.fan_in_fan_out)
        acc = maths.dora_merge(acc, base, delta, t["magnitude"].to(**f32),
                               fan_in_fan_out=op.embedding or op.fan_in_fan_out)
    out = acc.to(dtype=out_dtype)
    # finite factors times finite weights can still overflow (fp32, or the output dtype):
    # refuse rather than write a model of Inf/NaN; a base that already holds them is its own affair
    if not bool(torch.isfinite(out).all()) and bool(torch.isfinite(weight).all()):
        raise overflow(task, out_dtype)
    return out.cpu()


def _writer(plan: MergePlan, folder: Path, inbox: queue.Queue, budget: Budget, pool: Pool, io,
            stop: threading.Event, errors: list, progress: Progress | None, writeback: Writeback) -> None:
    base_dir = Path(plan.base.path)
    fds: dict[str, int] = {}
    stream: ShardStream | None = None
    total = plan.bytes_written
    done = 0
    tasks_by_file: dict[str, list[TensorTask]] = {}
    for task in plan.tasks:
        tasks_by_file.setdefault(task.out_file, []).append(task)
    try:
        while True:
            item = get(inbox, stop)
            if item is DONE:
                break
            if isinstance(item, Piece):
                task = item.task
            else:
                task, pieces, cost = item if isinstance(item, tuple) else (item, None, 0)
            if stream is None or stream.path.name != task.out_file:
                if stream is not None:
                    stream.close()
                entries = [e for t in tasks_by_file[task.out_file] for e in t.entries]
                stream = ShardStream(folder / task.out_file, entries, {"format": "pt"}, writeback)
            if isinstance(item, Piece):
                if item.first:
                    stream.begin(task.name, task.out_bytes)
                if not io.wait(item.ticket):
                    raise overflow(task, item.rows.dtype)
                data = item.rows.reshape(-1).view(torch.uint8)
                stream.write_bytes(memoryview(data.numpy()))
                done += data.numel()
                pool.give(item.buf)
                del item, data
                if progress:
                    progress(done, total, task.name)
                continue
            if pieces is None:
                if task.source_file not in fds:
                    fds[task.source_file] = os.open(base_dir / task.source_file, os.O_RDONLY)
                stream.copy_range(task.name, fds[task.source_file], task.begin, task.in_bytes)
            else:
                for name, tensor in pieces:
                    stream.write(name, tensor.contiguous().reshape(-1).view(torch.uint8).numpy())
                del pieces, tensor
                budget.release(cost)
            done += task.out_bytes
            if progress:
                progress(done, total, task.name)
        if stream is not None and not stop.is_set():
            stream.close()
            stream = None
    except BaseException as exc:  # noqa: BLE001 - surfaced in the caller's thread
        errors.append(exc)
        stop.set()
    finally:
        if stream is not None:
            stream.abort()
        for fd in fds.values():
            os.close(fd)


def execute(plan: MergePlan, out_dir: str | os.PathLike, *, device: str = "auto", progress: Progress | None = None,
            overwrite: bool = False, prefetch_bytes: int = DEFAULT_PREFETCH_BYTES,
            lineage_extra: dict | None = None, piece_bytes: int = PIECE_BYTES) -> MergeResult:
    """Write the merged model to ``out_dir`` (atomically) and return what was done."""
    from hub.write_guard import check_write_target

    # the registry-aware check runs in hub.services.merging; here: /, $HOME and the inputs
    check_write_target(None, out_dir, sources=[plan.base.path, *(a.info.path for a in plan.adapters)],
                       overwrite=overwrite)
    device = resolve_device(device)
    started = time.perf_counter()
    folder = AtomicFolder(out_dir, overwrite=overwrite)
    folder.check()
    stop = threading.Event()
    errors: list[BaseException] = []
    budget = Budget(prefetch_bytes, stop)
    loaded: queue.Queue = queue.Queue(maxsize=4)
    finished: queue.Queue = queue.Queue(maxsize=4)
    drift = Drift() if plan.quant else None
    with _terminate_as_interrupt(), _compute_threads(device), folder as tmp, Writeback() as writeback:
        io = open_device(device)
        buffer_bytes = pool_buffer_bytes(plan, piece_bytes)
        pool = Pool(io, max(3, POOL_BYTES // max(1, buffer_bytes)), buffer_bytes, stop)
        reader = threading.Thread(target=run_reader, args=(plan, loaded, budget, pool, stop, errors, piece_bytes),
                                  name="hub-merge-reader", daemon=True)
        writer = threading.Thread(target=_writer,
                                  args=(plan, tmp, finished, budget, pool, io, stop, errors, progress, writeback),
                                  name="hub-merge-writer", daemon=True)
        reader.start()
        writer.start()
        try:
            while True:
                item = get(loaded, stop)
                if item is DONE:
                    break
                if isinstance(item, Piece):
                    if item.first:
                        on_device = io.prepare(item.terms)
                    item.ticket = io.fold(item.rows, item.row0, on_device)
                elif isinstance(item, Loaded):
                    item = (item.task, _compute(item, device, drift), item.cost)
                if not put(finished, item, stop):
                    break
            put(finished, DONE, stop)
            writer.join()
        except BaseException:
            stop.set()
            raise
        finally:
            if errors:
                stop.set()
            reader.join(timeout=30)
            writer.join(timeout=30)
        if errors:
            raise errors[0]
        if len(plan.shards) > 1:
            write_index(tmp, {t.name: t.out_file for t in plan.tasks}, plan.bytes_written)
        lineage = _lineage(plan, device, lineage_extra)
        if drift is not None:
            lineage["quantization"] = plan.quant
        _copy_side_files(plan, tmp)
        (tmp / LINEAGE_NAME).write_text(json.dumps(lineage, indent=2) + "\n")
        folder.commit()
    return MergeResult(
        out_dir=str(folder.target), device=device, dtype=plan.out_dtype or "keep",
        tensors_total=len(plan.tasks), tensors_touched=len(plan.touched), bytes_read=plan.bytes_read,
        bytes_written=plan.bytes_written, seconds=time.perf_counter() - started, shards=list(plan.shards),
        untied_embeddings=plan.untie_embeddings, lineage=lineage,
        drift=drift.to_dict() if drift is not None else None,
    )


def _compute(item: Loaded, device: str, drift: Drift | None) -> list[tuple[str, torch.Tensor]]:
    """The tensors one task writes: the folded value, or its packed pieces when requantized."""
    task = item.task
    base = item.weight if drift is not None and task.ops else None
    merged = fold(task, item.weight, item.op_tensors, device, item.owned and base is None)
    pieces, packed = task.sink.encode(task.name, merged) if task.sink is not None else ([(task.name, merged)], None)
    if base is not None:
        measure_task(drift, task, item.original, base, merged, packed)
    return pieces


@contextlib.contextmanager
def _compute_threads(device: str):
    """Leave two cores to the reader and writer threads: torch's intra-op workers spin
    at barriers, and on a small machine competing with I/O threads they slow every
    tensor down several times over (measured: 2.5x on 2 cores)."""
    if device != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, min(before, (os.cpu_count() or 1) - 2)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _terminate_as_interrupt():
    """Let `kill` (SIGTERM) clean up like Ctrl-C does, while a merge runs in the main thread."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _lineage(plan: MergePlan, device: str, extra: dict | None) -> dict:
    from hub._version import __version__

    doc = {
        "hub_version": __version__,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "base": {"path": plan.base.path, "shape_signature": plan.base.shape_signature},
        "adapters": [{"name": a.name, "path": a.info.path, "sha256": a.info.sha256, "weight": a.weight}
                     for a in plan.adapters],
        "device": device,
        "dtype": plan.out_dtype or "keep",
        "untied_embeddings": plan.untie_embeddings,
    }
    doc.update(extra or {})
    return doc


def _copy_side_files(plan: MergePlan, folder: Path) -> None:
    """config.json (dtype and tying updated), generation config, tokenizer files."""
    base_dir = Path(plan.base.path)
    config = json.loads(json.dumps(plan.base.config))
    if plan.out_dtype in CONFIG_DTYPES:
        for cfg in (config, config.get("text_config")):
            if isinstance(cfg, dict):
                cfg["dtype"] = CONFIG_DTYPES[plan.out_dtype]
                if "torch_dtype" in cfg:
                    cfg["torch_dtype"] = CONFIG_DTYPES[plan.out_dtype]
    for key, value in plan.config_updates.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    if plan.untie_embeddings:
        config["tie_word_embeddings"] = False
        if isinstance(config.get("text_config"), dict):
            config["text_config"]["tie_word_embeddings"] = False
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    for name in plan.base.extra_files:
        if name == "config.json" or name in SKIP_NAMES or name.endswith(SKIP_SUFFIXES) or name.startswith("."):
            continue
        shutil.copyfile(base_dir / name, folder / name)   # new file: mode from the umask
