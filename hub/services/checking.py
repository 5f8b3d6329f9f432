"""Base models as registry entries, and every `hub check`.

A base is recorded from its config.json and safetensors headers (no weights are
loaded, nothing is copied): its shape table goes into base_models.shapes_json. Each
adapter is checked against each base once, when either is registered, and the verdict
lands in adapter_base_fits, so `hub list --fits BASE` and `--all-bases` answer from
the table. All checks run hub.compat's pure rules on rows; no file is re-read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from hub.compat import AdapterSpec, BaseSpec, check_adapter_base, check_adapters, check_runtime, fits
from hub.errors import AlreadyExists, NotFound
from hub.findings import Finding
from hub.names import check_base_name
from hub.progress import Progress
from hub.results import BaseRecord, BatchResult, CheckReport, FitsResult, finding_dicts
from hub.registry import adapters as q
from hub.registry import bases as qb
from hub.registry import fits as qf
from hub.registry import reading
from hub.registry.adapters import now



class UnknownCheckTarget(NotFound):
    """`hub check` names an adapter or base that does not exist: a usage error (exit 2),
    since exit 1 means "checked, not compatible"."""

    exit_code = 2


def _stored_findings(findings: list[Finding]) -> str:
    return json.dumps(finding_dicts(findings))


class CheckingService:
    """Base models (`hub base ...`) and every `hub check ...`. Needs the registry only."""

    def __init__(self, ctx):
        self.db = ctx.db
        # parsed base specs (and their derived module tables and memos) are reused across
        # checks within a process, keyed by id and validated by (name, signature, created_at)
        # in case another process removed the base and its id was reused
        self._base_cache: dict[int, tuple[tuple, BaseSpec]] = {}

    # -- bases ----------------------------------------------------------------------------

    def add_base(self, path: str | os.PathLike, name: str | None = None, source: dict | None = None,
                 progress: Progress | None = None) -> BaseRecord:
        """Register a local Hugging Face model folder as a base (headers only, nothing copied)
        and check every registered adapter against it."""
        from hub.formats.base_model import read_base_model

        folder = Path(path).expanduser().resolve()
        info = read_base_model(folder)
        name = name or folder.name
        check_base_name(name)
        source = dict(source or {"kind": "local"})
        with self.db.write() as conn:
            if qb.id_by_name(conn, name) is not None:
                raise AlreadyExists(f"a base named {name!r} is already registered", str(folder),
                                    "pick another with --name, or `hub base rm` the old one")
            same = qb.name_by_path(conn, str(folder))
            if same and source.get("kind", "local") == "local":
                raise AlreadyExists(f"this folder is already registered as base {same!r}", str(folder),
                                    f"use that name, or `hub base rm {same}` first")
            base_id = qb.insert_base(conn, info, name, str(folder), source, BaseSpec.shapes_json(info), now())
            base = self._base_spec_of(conn, base_id)
            self._fill_fits_for_base(conn, base_id, base, progress=progress)
        return self.get_base(name)

    def base_id(self, name: str) -> int:
        """Id of a registered base model by name."""
        with self.db.read() as conn:
            found = qb.id_by_name(conn, name)
        if found is None:
            raise NotFound(f"no registered base named {name!r}", None, "register it with `hub base add PATH`")
        return found

    def list_bases(self) -> list[BaseRecord]:
        with self.db.read() as conn:
            return reading.list_bases(reading.Alchemy(conn))

    def get_base(self, name: str) -> BaseRecord:
        with self.db.read() as conn:
            return reading.get_base(reading.Alchemy(conn), name)

    def remove_base(self, name: str) -> BaseRecord:
        record = self.get_base(name)
        with self.db.write() as conn:
            qb.delete_base(conn, record.id)
        self._base_cache.pop(record.id, None)
        return record

    # -- checks ---------------------------------------------------------------------------

    def check(self, name: str, base: str) -> CheckReport:
        """Adapter ``name`` (registered, or an adapter folder) against ``base`` (a registered
        base name, or a model folder). Verdicts on registered pairs are stored."""
        adapter, adapter_id = self._adapter_spec(name)
        registered = self._registered_base(base)
        if registered is None:
            from hub.formats.base_model import read_base_model

            if not Path(base).expanduser().is_dir():
                raise UnknownCheckTarget(f"no registered base named {base!r} and no such folder", base,
                               "see `hub base list`, or pass a model folder")
            spec = BaseSpec.from_info(read_base_model(Path(base).expanduser().resolve()))
            return CheckReport("base", adapter.name, base, check_adapter_base(adapter, spec))
        base_id, spec = registered
        findings = check_adapter_base(adapter, spec)
        if adapter_id is not None:
            with self.db.write() as conn:
                self._store_fit(conn, adapter_id, base_id, findings)
                qf.resolve_base_ids(conn, {adapter_id: adapter.base_model})
        return CheckReport("base", adapter.name, spec.name, findings)

    def check_all_bases(self, name: str) -> FitsResult:
        adapter, adapter_id = self._adapter_spec(name)
        with self.db.read() as conn:
            ids = qb.ids(conn)
            bases = [(i, self._base_spec_of(conn, i)) for i in ids]
        reports = [CheckReport("base", adapter.name, b.name, check_adapter_base(adapter, b)) for _, b in bases]
        if adapter_id is not None and bases:
            with self.db.write() as conn:
                for (base_id, _), report in zip(bases, reports):
                    self._store_fit(conn, adapter_id, base_id, report.findings)
                qf.resolve_base_ids(conn, {adapter_id: adapter.base_model})
        return FitsResult(adapter.name, reports)

    def check_base_all(self, base: str, refresh: bool = False, progress: Progress | None = None) -> BatchResult:
        """Every registered adapter against registered base ``base``. Stored verdicts newer than
        the adapter are reused; the others (or all, with ``refresh``) are checked and stored."""
        registered = self._registered_base(base)
        if registered is None:
            raise UnknownCheckTarget(f"no registered base named {base!r}", None,
                                     "see `hub base list`, or register it with `hub base add PATH`")
        base_id, spec = registered
        if refresh:
            with self.db.write() as conn:
                return BatchResult(spec.name, [r for _, r in self._fill_fits_for_base(conn, base_id, spec, progress)])
        with self.db.read() as conn:
            rows = reading.base_verdicts(reading.Alchemy(conn), base_id)
        stale = [r.id for r in rows if reading.is_stale(r)]
        computed = {}
        if stale:
            with self.db.write() as conn:
                computed = dict(self._fill_fits_for_base(conn, base_id, spec, progress, only=stale))
        reports = [computed.get(r.id) or CheckReport("base", r.name, spec.name,
                                                      [Finding(**f) for f in json.loads(r.findings_json)])
                   for r in rows]
        return BatchResult(spec.name, reports)

    def check_combination(self, names: Sequence[str], method: str, rank: int | None = None) -> CheckReport:
        specs, ids = zip(*(self._adapter_spec(n) for n in names)) if names else ((), ())
        base_fits = None
        if all(i is not None for i in ids):
            with self.db.read() as conn:
                known = qf.fitting_bases(conn, list(ids))
                names_of = qb.names_by_id(conn)
            # only meaningful when every adapter was checked against the registered bases
            if names_of and all(i in known for i in ids):
                base_fits = [{names_of[b] for b in known[i]} for i in ids]
        findings = check_adapters(list(specs), method, rank=rank, base_fits=base_fits)
        return CheckReport("adapters", " + ".join(s.name or "?" for s in specs), method, findings)

    def check_runtime(self, name: str, runtime: str, base: str | None = None) -> CheckReport:
        """Runtime lint; with ``base`` (or the registered base the adapter fits) the
        architecture-specific rules run too (llama.cpp tensor names, tied embeddings)."""
        adapter, adapter_id = self._adapter_spec(name)
        spec = self.base_spec_for(adapter_id, base)
        return CheckReport("runtime", adapter.name, runtime, check_runtime(adapter, runtime, spec))

    def base_spec_for(self, adapter_id: int | None, base: str | None) -> BaseSpec | None:
        """``base`` (a registered name or a model folder), else the registered base the
        adapter was matched to, else None."""
        if base:
            registered = self._registered_base(base)
            if registered is not None:
                return registered[1]
            from hub.formats.base_model import read_base_model

            if not Path(base).expanduser().is_dir():
                raise UnknownCheckTarget(f"no registered base named {base!r} and no such folder", base,
                                         "see `hub base list`, or pass a model folder")
            return BaseSpec.from_info(read_base_model(Path(base).expanduser().resolve()))
        if adapter_id is None:
            return None
        with self.db.read() as conn:
            base_id = qf.base_of(conn, adapter_id)
            return self._base_spec_of(conn, base_id) if base_id is not None else None

    # -- what other services call --------------------------------------------------------

    def check_new_adapter(self, conn, adapter_id: int, info) -> None:
        """Check a new adapter against every registered base, inside the transaction that adds it."""
        ids = qb.ids(conn, by="id")
        if not ids:
            return
        adapter = AdapterSpec.from_info(info)
        for base_id in ids:
            self._store_fit(conn, adapter_id, base_id, check_adapter_base(adapter, self._base_spec_of(conn, base_id)),
                            fresh=True)
        qf.resolve_base_ids(conn, {adapter_id: info.base_model})

    # -- helpers ----------------------------------------------------------------------------

    def _base_spec_of(self, conn, base_id: int) -> BaseSpec:
        stamp = qb.stamp(conn, base_id)
        hit = self._base_cache.get(base_id)
        if hit is None or hit[0] != stamp:
            row = qb.row_by_id(conn, base_id)
            hit = self._base_cache[base_id] = (stamp, BaseSpec.from_row(row))
        return hit[1]

    def _registered_base(self, name: str) -> tuple[int, BaseSpec] | None:
        with self.db.read() as conn:
            base_id = qb.id_by_name(conn, name)
            if base_id is None:
                folder = str(Path(name).expanduser().resolve()) if Path(name).expanduser().is_dir() else None
                base_id = qb.id_by_path(conn, folder) if folder else None
            return (base_id, self._base_spec_of(conn, base_id)) if base_id is not None else None

    def _adapter_spec(self, name: str) -> tuple[AdapterSpec, int | None]:
        with self.db.read() as conn:
            row = q.get_row(conn, name)   # NAME[@VERSION|ALIAS]
        if row is not None:
            return AdapterSpec.from_json(name if "@" in name else row.name, row.config_json, row.modules_json, row.saved_tensors_json,
                                         row.dtype), row.id
        folder = Path(name).expanduser()
        if (folder / "adapter_config.json").is_file():
            from hub.inspect import inspect_adapter, refuse_on_errors

            info = inspect_adapter(folder)
            refuse_on_errors(info)
            return AdapterSpec.from_info(info, str(folder)), None
        raise UnknownCheckTarget(f"no adapter named {name!r} and no adapter folder there", name,
                       "see `hub list` for registered names, or pass an adapter folder")

    def _store_fit(self, conn, adapter_id: int, base_id: int, findings: list[Finding], fresh: bool = False) -> None:
        qf.store(conn, adapter_id, base_id, fits(findings), _stored_findings(findings), now(), fresh=fresh)

    def _fill_fits_for_base(self, conn, base_id: int, base: BaseSpec, progress: Progress | None = None,
                            only: list[int] | None = None) -> list[tuple[int, CheckReport]]:
        """Check registered adapters (all, or the ids in ``only``) against one base and store
        the verdicts: rows in, rows out, one transaction."""
        rows = qf.adapters_to_check(conn, only)
        reports, values, stamp, declared = [], [], now(), {}
        for i, row in enumerate(rows):
            if progress and i % 100 == 0:
                progress(i, len(rows), row.name)
            spec = AdapterSpec.from_json(row.name, row.config_json, row.modules_json, row.saved_tensors_json,
                                         row.dtype)
            findings = check_adapter_base(spec, base)
            reports.append((row.id, CheckReport("base", row.name, base.name, findings)))
            values.append({"adapter_id": row.id, "base_id": base_id, "compatible": fits(findings),
                           "findings_json": _stored_findings(findings), "checked_at": stamp})
            if row.base_id is None and fits(findings):
                declared[row.id] = spec.base_model
        qf.replace_for_base(conn, base_id, values, only)
        qf.resolve_base_ids(conn, declared)
        if progress:
            progress(len(rows), len(rows), "")
        return reports
