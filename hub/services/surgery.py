"""Resize, fix and extract: derive a registered adapter from a registered one (or from a
fully fine-tuned model), with lineage and the per-module error table.

The computation is hub.surgery's; here the parents are resolved, the result is written
into HUB_HOME/tmp and registered through the same ``add`` path as `hub add`, with the
error table as the adapter's recipe (``hub show`` prints it) and one lineage row per
parent (adapter, base, tuned model: name and content hash), in one transaction. The
temp folder goes whatever happens, so a failure leaves the registry and store as they were.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field

from hub.errors import AlreadyExists, UsageError
from hub.names import check_name
from hub.progress import Progress
from hub.records import AdapterRecord
from hub.registry import adapters as q



@dataclass(frozen=True)
class SurgeryOutcome:
    record: AdapterRecord | None      # None: dry run, or nothing to change
    surgery: object                    # hub.surgery.Surgery
    message: str
    extra: dict = field(default_factory=dict)   # serve command, logit error, ...

    def to_dict(self) -> dict:
        return {"name": self.record.name if self.record else None,
                "sha256": self.record.sha256 if self.record else None,
                **self.surgery.summary(), "message": self.message, **self.extra,
                "module_reports": self.surgery.table()}


def recipe_of(surgery, parents: list[dict], extra: dict | None = None) -> dict:
    """What `hub show` prints for a derived adapter: how it was made and what it cost."""
    return {"operation": surgery.operation, "params": surgery.params,
            "parents": [{k: p.get(k) for k in ("type", "name", "sha256")} for p in parents],
            "total_rel_error": surgery.total_rel_error, "notes": surgery.notes, **(extra or {}),
            "errors": [{k: c[k] for k in ("path", "action", "rank_before", "rank_after", "rel_error", "target_norm")}
                       for c in surgery.table()]}


class SurgeryService:
    """`hub resize`, `hub fix`, `hub extract`. Needs the adapters service (parents, ``add``,
    ``export``) and merging (a base given by name or folder)."""

    def __init__(self, ctx, adapters, merging):
        self.ctx, self.db, self.store = ctx, ctx.db, ctx.store
        self.adapters, self.merging = adapters, merging

    def resize(self, name: str, rank: int | None = None, energy: float | None = None, new_name: str | None = None,
               out: str | None = None, tags=(), dry_run: bool = False,
               progress: Progress | None = None) -> SurgeryOutcome:
        """The best rank-``rank`` (and/or ``energy``) approximation of adapter ``name``."""
        from hub.combine import load_factors
        from hub.surgery import resize
        from hub.surgery.resize import check_rank_energy

        check_rank_energy(rank, energy, "hub resize")
        record = self.adapters.get(name)
        target = new_name or (f"{record.name}-r{rank}" if rank else f"{record.name}-e{energy:g}")
        self._check_free(target)
        self._guard_out(out)
        if progress:
            progress(0, 1, name)
        result = resize(load_factors(self.adapters.adapter_dir(name), name=name), rank=rank, energy=energy)
        if progress:
            progress(1, 1, name)
        parents = [self._adapter_parent(record)]
        return self._register_surgery(result, target, parents, tags, dry_run, f"resized {name} into {target}",
                                      out=out)

    def fix(self, name: str, runtime: str, base: str | None = None, max_lora_rank: int | None = None,
            new_name: str | None = None, out: str | None = None, tags=(), dry_run: bool = False,
            progress: Progress | None = None) -> SurgeryOutcome:
        """An adapter derived from ``name`` that ``runtime`` serves (see hub.surgery.fix)."""
        from hub.combine import load_factors
        from hub.inspect import inspect_adapter
        from hub.surgery.fix import fix
        from hub.surgery.runtimes import needs_of, serve_command

        needs = needs_of(runtime, max_lora_rank)
        record = self.adapters.get(name)
        target = new_name or f"{record.name}-{needs.name.replace('.', '')}"
        self._check_free(target)
        self._guard_out(out)
        info = inspect_adapter(self.adapters.adapter_dir(name))
        factors = load_factors(info.path, name=name, info=info)
        parents = [self._adapter_parent(record)]
        weights = None
        base_ref = base or record.base      # the registered base matched by shapes, when not given
        if base_ref:
            weights, base_parent = self._base_weights(base_ref, info, name)
        try:
            result = fix(factors, needs, weights, progress=progress)
            if weights is not None and any(c.action in ("dora_to_lora", "saved_to_lora") or
                                           (c.rank_before is None and c.target_norm is not None)
                                           for c in result.changes):
                parents.append({**base_parent, "sha256": weights.content_hash()})   # valid on that base only
        finally:
            if weights is not None:
                weights.close()
        path = out or f"./{target}"
        serve_base = (weights.info.path if weights is not None else None) or record.base_model or "BASE"
        extra = {"runtime": needs.name}
        if result.changed:
            max_rank = max((c.rank_after for c in result.changes), default=1)
            folder_first = not out and needs.name in ("vllm", "peft")   # llama.cpp/Ollama export a GGUF instead
            extra["serve_command"] = ([f"hub export {target} {path}"] if folder_first else []) + \
                serve_command(needs.name, target, path, serve_base, max_rank)
        return self._register_surgery(result, target, parents, tags, dry_run, f"fixed {name} for {needs.name} "
                                      f"as {target}", extra, out=out)

    def extract(self, base: str, tuned: str, rank: int | None = None, energy: float | None = None,
                targets: tuple[str, ...] | None = None, high_error: str = "keep", max_error: float | None = None,
                new_name: str | None = None, out: str | None = None, eval_logits: bool = False, seed: int = 0, tags=(),
                dry_run: bool = False, progress: Progress | None = None) -> SurgeryOutcome:
        """A LoRA of ``tuned`` (a model folder) minus ``base`` (registered name or folder)."""
        from pathlib import Path

        from hub.errors import NotFound
        from hub.surgery.extract import DEFAULT_MAX_ERROR, extract
        from hub.surgery.resize import check_rank_energy
        from hub.surgery.weights import ModelWeights

        check_rank_energy(rank, energy, "hub extract")
        max_error = DEFAULT_MAX_ERROR if max_error is None else max_error
        if not (0.0 <= max_error <= 1.0):
            raise UsageError(f"--max-error must be in [0, 1], got {max_error!r}", "--max-error", "e.g. 0.5")
        tuned_dir = Path(tuned).expanduser()
        if not tuned_dir.is_dir():
            raise NotFound("tuned model folder does not exist", str(tuned_dir), "pass the fine-tuned model's folder")
        target = new_name or f"{tuned_dir.resolve().name}-lora-{f'r{rank}' if rank else f'e{energy:g}'}"
        self._check_free(target)
        base_id, base_name, base_path = self.merging.merge_base(base)
        self._guard_out(out, sources=[base_path, tuned_dir])
        if tuned_dir.resolve() == Path(base_path).resolve():
            raise UsageError("--tuned is the base model itself", str(tuned_dir), "pass the fine-tuned model")
        with ModelWeights(base_path) as bw, ModelWeights(tuned_dir) as tw:
            result = extract(bw, tw, rank=rank, energy=energy, targets=tuple(targets) if targets else None,
                             high_error=high_error, max_error=max_error, seed=seed, base_name=base_name,
                             progress=progress)
            parents = ([{"type": "base", "id": base_id, "name": base_name, "sha256": bw.content_hash()},
                        {"type": "tuned", "id": None, "name": str(tw.folder.resolve()), "sha256": tw.content_hash()}]
                       if not dry_run else [])
        extra = {"tuned": str(tuned_dir.resolve()), "base": base_name}
        if eval_logits:
            from hub.surgery.evaluate import logit_error

            folder = self.store.temp_path("eval")
            try:
                result.write(folder)
                extra["logit_error"] = logit_error(base_path, str(tuned_dir), str(folder), seed=seed)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        return self._register_surgery(result, target, parents, tags, dry_run,
                                      f"extracted {target} from {tuned_dir.name} - {base_name}", extra, out=out)

    def _base_weights(self, base: str, info, adapter_name: str):
        """(ModelWeights, lineage parent) for a base the adapter must fit, or a one-line refusal."""
        from hub.compat import AdapterSpec, BaseSpec, check_adapter_base
        from hub.errors import Incompatible
        from hub.surgery.weights import ModelWeights

        base_id, base_name, base_path = self.merging.merge_base(base)
        weights = ModelWeights(base_path)
        errors = [f for f in check_adapter_base(AdapterSpec.from_info(info, adapter_name),
                                                BaseSpec.from_info(weights.info, base_name))
                  if f.severity == "error"]
        if errors:
            weights.close()
            raise Incompatible(f"adapter {adapter_name} does not fit base {base_name}: {errors[0].message}",
                               errors[0].module or base_name, "pass the base model the adapter was trained on",
                               findings=errors)
        return weights, {"type": "base", "id": base_id, "name": base_name}

    # -- shared -------------------------------------------------------------------------

    def _check_free(self, name: str) -> None:
        check_name(name)
        with self.db.read() as conn:
            if q.name_taken(conn, name):
                raise AlreadyExists(f"the name {name!r} is already taken", None,
                                    "choose another with --name, or `hub rm` the old one")

    @staticmethod
    def _adapter_parent(record: AdapterRecord) -> dict:
        return {"type": "adapter", "id": record.id, "name": record.name, "sha256": record.sha256, "weight": 1.0,
                "version": record.version}

    def _guard_out(self, out, sources=()) -> None:
        """Refuse an --out target before any work: the write guard's places and non-empty folders."""
        if out is not None:
            from hub.write_guard import check_write_target

            check_write_target(self.ctx, out, sources=sources)

    def _register_surgery(self, surgery, name: str, parents: list[dict], tags, dry_run: bool, message: str,
                          extra: dict | None = None, out: str | None = None) -> SurgeryOutcome:
        extra = dict(extra or {})
        if not surgery.changed:
            return SurgeryOutcome(None, surgery, "nothing to change: " + "; ".join(surgery.notes[-1:]), extra)
        if dry_run:
            return SurgeryOutcome(None, surgery, "dry run: nothing written", extra)
        recipe = recipe_of(surgery, parents, {k: v for k, v in extra.items() if k != "serve_command"})
        folder = self.store.temp_path(surgery.operation)
        try:
            surgery.write(folder, {"hub_surgery": json.dumps({"operation": surgery.operation,
                                                               "params": surgery.params})})
            added = self.adapters.add(folder, name=name, tags=tags, source={"kind": surgery.operation}, recipe=recipe,
                             lineage=parents)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if added.status != "added":
            raise AlreadyExists(f"the result is identical to the registered adapter {added.record.name!r}", name,
                                "use that adapter, or `hub rm` it first")
        if out is not None:   # a PEFT folder where the user asked for one (guarded, atomic: hub export)
            self.adapters.export(added.record.name, out)
        return SurgeryOutcome(added.record, surgery, message, extra)


