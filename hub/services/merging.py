"""`hub merge` and `hub models`: merge registered adapters into a base model folder
and record the result, with its lineage, in the registry.

Adapters are named as registered (or given as folders); the base is a registered
base name or a model folder. hub.merge runs hub.compat's adapter/base check before
anything is written and refuses with its findings. The output folder appears
atomically; the registry row is written after it, and a failure there removes the
folder again, so a failed merge leaves the registry and the disk as they were.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from hub.errors import AlreadyExists, NotFound, UsageError
from hub.names import check_name, check_weight, name_from_folder
from hub.progress import Progress
from hub.registry import adapters as q
from hub.registry import bases as qb
from hub.registry import models as qm
from hub.registry import reading
from hub.results import MergedModelRecord

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class MergeOutcome:
    dry_run: bool
    plan: dict                      # MergePlan.describe(): tensors, bytes, memory estimate, device
    result: dict | None = None      # MergeResult.to_dict() once written
    record: MergedModelRecord | None = None

    @property
    def out_dir(self) -> str:
        return self.result["out_dir"] if self.result else self.plan.get("out", "")

    def to_dict(self) -> dict:
        out = {"dry_run": self.dry_run, "plan": self.plan}
        if self.result is not None:
            out["result"] = self.result
        if self.record is not None:
            out["model"] = self.record.to_dict()
        return out


class MergingService:
    """`hub merge` and `hub models`. Needs the adapters service (parents are read from the store)."""

    def __init__(self, ctx, adapters):
        self.ctx, self.db = ctx, ctx.db
        self.adapters = adapters

    def merge(self, base: str, adapters: Sequence[tuple[str, float]], out: str | os.PathLike, *,
              name: str | None = None, device: str = "auto", dtype: str = "keep", shard_size: str | int = "5GB",
              overwrite: bool = False, dry_run: bool = False, progress: Progress | None = None,
              quant=None, check_logits: bool = False) -> MergeOutcome:
        """Merge ``adapters`` ([(registered name or folder, weight)]) into ``base`` and write ``out``.

        ``quant``: hub.merge.QuantOptions (--as-quantized, --requantize); a bitsandbytes base is
        dequantized without it. ``check_logits`` (with requantize) adds the logits' relative change
        to the drift report. With ``dry_run`` only the plan is built (all checks run, nothing is written)."""
        from hub.merge import DEFAULT_PREFETCH_BYTES, MergeInput, build_plan, resolve_device
        from hub.atomic import check_target
        from hub.write_guard import check_write_target

        if not adapters:
            raise UsageError("no adapters to merge", "hub merge", "name adapters as NAME or NAME:WEIGHT")
        base_id, base_name, base_path = self.merge_base(base)
        parents = [self._merge_adapter(ref) for ref, _ in adapters]
        out = check_write_target(self.ctx, out, sources=[base_path, *(info.path for _, info, _ in parents)],
                                 overwrite=overwrite)
        model_name = check_name(name, "model name") if name else name_from_folder(out.name)
        replaces = self._merged_row_for(model_name, out, overwrite)

        inputs = [MergeInput(info, check_weight(float(w), label), label)
                  for (label, info, _), (_, w) in zip(parents, adapters)]
        plan = build_plan(base_path, inputs, dtype=dtype, shard_size=shard_size, quant=quant)
        if check_logits and not (quant is not None and quant.requantize):
            raise UsageError("--check-logits measures what requantizing costs", "--check-logits",
                             "use it with --requantize")
        device = resolve_device(device)
        report = plan.describe(device, DEFAULT_PREFETCH_BYTES)
        report["out"] = str(out)
        report["name"] = model_name
        if dry_run:
            check_target(out, overwrite)
            return MergeOutcome(True, report)

        existed = out.exists()
        log.debug("merging %s into base %s -> %s on %s", ", ".join(f"{n}:{w:g}" for n, w in adapters), base, out,
                  device)
        from hub.merge import execute   # torch: its background import (hub.merge.torch_loader) is joined here

        result = execute(plan, out, device=device, progress=progress, overwrite=overwrite,
                         lineage_extra={"name": model_name})
        try:
            if check_logits:
                result.drift["logits"] = _logits_against_full_precision(base_path, inputs, out, device, quant)
            record = self._record_merge(model_name, out, base_id, base_name, base_path, parents, adapters,
                                        result, replaces)
        except BaseException:
            if not existed:   # a folder we created must not outlive its missing record
                shutil.rmtree(out, ignore_errors=True)
            raise
        return MergeOutcome(False, report, result.to_dict(), record)

    def list_models(self) -> list[MergedModelRecord]:
        with self.db.read() as conn:
            return reading.list_models(reading.Alchemy(conn))

    def get_model(self, name: str) -> MergedModelRecord:
        with self.db.read() as conn:
            return reading.get_model(reading.Alchemy(conn), name)

    # -- helpers ---------------------------------------------------------------------------

    def merge_base(self, base: str) -> tuple[int | None, str, str]:
        """(registered id or None, display name, folder) for a base name or a model folder."""
        folder = Path(base).expanduser()
        with self.db.read() as conn:
            row = qb.located(conn, base, str(folder.resolve()) if folder.is_dir() else None)
        if row is not None:
            if not row.path or not Path(row.path).is_dir():
                raise NotFound(f"the folder of base {row.name!r} is gone", row.path,
                               "restore it, or pass the model folder with --base")
            return row.id, row.name, row.path
        if folder.is_dir():
            return None, str(folder.resolve()), str(folder.resolve())
        raise NotFound(f"no registered base named {base!r} and no such folder", base,
                       "see `hub base list`, or pass a model folder")

    def _merge_adapter(self, ref: str):
        """(label, AdapterInfo, registry record or None) for a registered name or an adapter folder."""
        from hub.inspect import inspect_adapter

        with self.db.read() as conn:
            registered = q.get_row(conn, ref) is not None
        if registered:
            record = self.adapters.get(ref)
            info = inspect_adapter(self.adapters.adapter_dir(ref))
            if info.sha256 != record.sha256:
                from hub.errors import IntegrityError

                raise IntegrityError(f"adapter {ref} on disk does not match its registered hash", info.path,
                                     "run `hub verify` / `hub doctor`")
            return ref, info, record
        folder = Path(ref).expanduser()
        if (folder / "adapter_config.json").is_file():
            from hub.merge.plan import refuse_other_peft_types

            refuse_other_peft_types(folder)
            return str(folder), inspect_adapter(folder), None
        raise NotFound(f"no adapter named {ref!r} and no adapter folder there", ref,
                       "see `hub list`, or pass an adapter folder")

    def _merged_row_for(self, name: str, out: Path, overwrite: bool) -> int | None:
        """Id of the row this merge replaces (same name and folder, with overwrite), else refuse a taken name."""
        with self.db.read() as conn:
            row = qm.row_by_name(conn, name)
        if row is None:
            return None
        if overwrite and Path(row.path) == out:
            return row.id
        raise AlreadyExists(f"a merged model named {name!r} is already recorded", row.path,
                            "pick another with --name" + (", or pass --overwrite to redo it" if Path(row.path) == out
                                                          else ""))

    def _record_merge(self, name, out: Path, base_id, base_name, base_path, parents, adapters, result,
                      replaces: int | None) -> MergedModelRecord:
        from hub._version import __version__
        from hub.registry.adapters import now

        lineage_rows = [{"type": "base", "id": base_id, "name": base_name,
                         "sha256": result.lineage["base"]["shape_signature"], "weight": None}]
        for (label, info, record), (_, weight) in zip(parents, adapters):
            lineage_rows.append({"type": "adapter", "id": record.id if record else None,
                                 "name": record.name if record else label, "sha256": info.sha256,
                                 "weight": float(weight), "version": record.version if record else None})
        size = sum((out / shard).stat().st_size for shard in result.shards)
        with self.db.write() as conn:
            model_id = qm.insert_model(
                conn, name=name, path=str(out), base_id=base_id, base_name=base_name, base_path=base_path,
                dtype=result.dtype, size_bytes=size, num_shards=len(result.shards), recipe=result.lineage,
                hub_version=__version__, stamp=now(), drift=result.drift, replaces=replaces)
            q.add_lineage(conn, "model", model_id, lineage_rows)
        return self.get_model(name)


def _logits_against_full_precision(base_path: str, inputs, out: Path, device: str, quant) -> dict:
    """Merge again without requantizing (fp32, into a hidden folder beside ``out``, removed after)
    and compare both models' logits on a fixed batch."""
    import tempfile
    from dataclasses import replace

    from hub.merge import build_plan, execute
    from hub.quant.logits import logits_change

    scratch = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".full-precision"))
    try:
        plan = build_plan(base_path, inputs, dtype="fp32", quant=replace(quant, requantize=False))
        execute(plan, scratch / "model", device=device)
        return logits_change(scratch / "model", out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
