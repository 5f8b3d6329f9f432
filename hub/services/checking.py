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

from sqlalchemy import and_, delete, insert, select, update

from hub.compat import AdapterSpec, BaseSpec, check_adapter_base, check_adapters, check_runtime, fits
from hub.errors import AlreadyExists, NotFound
from hub.findings import Finding
from hub.names import check_base_name
from hub.progress import Progress
from hub.results import BaseRecord, BatchResult, CheckReport, FitsResult, finding_dicts
from hub.registry import adapters as q
from hub.registry import reading
from hub.registry.adapters import now
from hub.registry.schema import adapter_base_fits, adapters, base_models



class UnknownCheckTarget(NotFound):
    """`hub check` names an adapter or base that does not exist: a usage error (exit 2),
    since exit 1 means "checked, not compatible"."""

    exit_code = 2
_ADAPTER_COLUMNS = (adapters.c.id, adapters.c.name, adapters.c.config_json, adapters.c.modules_json,
                    adapters.c.saved_tensors_json, adapters.c.dtype, adapters.c.base_id)


def _stored_findings(findings: list[Finding]) -> str:
    return json.dumps(finding_dicts(findings))


class CheckingMixin:
    """Service operations of `hub base ...` and `hub check ...` (mixed into hub.service.Hub)."""

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
            if conn.execute(select(base_models.c.id).where(base_models.c.name == name)).first():
                raise AlreadyExists(f"a base named {name!r} is already registered", str(folder),
                                    "pick another with --name, or `hub base rm` the old one")
            same = conn.execute(select(base_models.c.name).where(base_models.c.path == str(folder))).scalar()
            if same and source.get("kind", "local") == "local":
                raise AlreadyExists(f"this folder is already registered as base {same!r}", str(folder),
                                    f"use that name, or `hub base rm {same}` first")
            base_id = conn.execute(insert(base_models).values(
                name=name, path=str(folder), architecture=info.architecture, model_type=info.model_type,
                dtype=info.dtype, vocab_size=info.vocab_size, hidden_size=info.hidden_size,
                num_layers=info.num_layers, tie_word_embeddings=info.tie_word_embeddings,
                quantization_json=json.dumps(info.quantization) if info.quantization else None,
                quant_scheme_json=json.dumps(info.quant_scheme) if info.quant_scheme else None,
                shape_signature=info.shape_signature, shapes_json=BaseSpec.shapes_json(info),
                config_json=json.dumps(info.config, sort_keys=True), size_bytes=info.size_bytes,
                source_kind=source.get("kind", "local"), source_repo=source.get("repo"),
                source_revision=source.get("revision"), source_commit=source.get("commit"), created_at=now(),
            )).inserted_primary_key[0]
            base = self._base_spec_of(conn, base_id)
            self._fill_fits_for_base(conn, base_id, base, progress=progress)
        return self.get_base(name)

    def list_bases(self) -> list[BaseRecord]:
        with self.db.read() as conn:
            return reading.list_bases(reading.Alchemy(conn))

    def get_base(self, name: str) -> BaseRecord:
        with self.db.read() as conn:
            return reading.get_base(reading.Alchemy(conn), name)

    def remove_base(self, name: str) -> BaseRecord:
        record = self.get_base(name)
        with self.db.write() as conn:
            orphans = [r[0] for r in conn.execute(select(adapters.c.id).where(adapters.c.base_id == record.id))]
            conn.execute(delete(adapter_base_fits).where(adapter_base_fits.c.base_id == record.id))
            conn.execute(update(adapters).where(adapters.c.base_id == record.id).values(base_id=None))
            conn.execute(delete(base_models).where(base_models.c.id == record.id))
            # adapters that pointed at it fall back to another base they fit, if any
            for adapter_id in orphans:
                other = conn.execute(select(adapter_base_fits.c.base_id).where(and_(
                    adapter_base_fits.c.adapter_id == adapter_id, adapter_base_fits.c.compatible.is_(True)))
                    .order_by(adapter_base_fits.c.base_id).limit(1)).scalar()
                if other is not None:
                    conn.execute(update(adapters).where(adapters.c.id == adapter_id).values(base_id=other))
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
                self._resolve_base_ids(conn, {adapter_id: adapter.base_model})
        return CheckReport("base", adapter.name, spec.name, findings)

    def check_all_bases(self, name: str) -> FitsResult:
        adapter, adapter_id = self._adapter_spec(name)
        with self.db.read() as conn:
            ids = [r[0] for r in conn.execute(select(base_models.c.id).order_by(base_models.c.name))]
            bases = [(i, self._base_spec_of(conn, i)) for i in ids]
        reports = [CheckReport("base", adapter.name, b.name, check_adapter_base(adapter, b)) for _, b in bases]
        if adapter_id is not None and bases:
            with self.db.write() as conn:
                for (base_id, _), report in zip(bases, reports):
                    self._store_fit(conn, adapter_id, base_id, report.findings)
                self._resolve_base_ids(conn, {adapter_id: adapter.base_model})
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
                known = {}
                for adapter_id, base_id, ok in conn.execute(select(
                        adapter_base_fits.c.adapter_id, adapter_base_fits.c.base_id, adapter_base_fits.c.compatible)
                        .where(adapter_base_fits.c.adapter_id.in_(list(ids)))):
                    known.setdefault(adapter_id, set())
                    if ok:
                        known[adapter_id].add(base_id)
                names_of = dict(conn.execute(select(base_models.c.id, base_models.c.name)).all())
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
            base_id = conn.execute(select(adapters.c.base_id).where(adapters.c.id == adapter_id)).scalar()
            return self._base_spec_of(conn, base_id) if base_id is not None else None

    # -- hooks and helpers ----------------------------------------------------------------

    def _on_adapter_added(self, conn, adapter_id: int, info) -> None:
        """A new adapter is checked against every registered base in the same transaction."""
        super()._on_adapter_added(conn, adapter_id, info)
        ids = [r[0] for r in conn.execute(select(base_models.c.id).order_by(base_models.c.id))]
        if not ids:
            return
        adapter = AdapterSpec.from_info(info)
        for base_id in ids:
            self._store_fit(conn, adapter_id, base_id, check_adapter_base(adapter, self._base_spec_of(conn, base_id)),
                            fresh=True)
        self._resolve_base_ids(conn, {adapter_id: info.base_model})

    @property
    def _base_cache(self) -> dict[int, tuple[tuple, BaseSpec]]:
        # parsed base specs (and their derived module tables and memos) are reused across
        # checks within a process, keyed by id and validated by (name, signature, created_at)
        # in case another process removed the base and its id was reused
        cache = self.__dict__.get("_checking_base_cache")
        if cache is None:
            cache = self.__dict__["_checking_base_cache"] = {}
        return cache

    def _base_spec_of(self, conn, base_id: int) -> BaseSpec:
        stamp = tuple(conn.execute(select(base_models.c.name, base_models.c.shape_signature,
                                          base_models.c.created_at).where(base_models.c.id == base_id)).first() or ())
        hit = self._base_cache.get(base_id)
        if hit is None or hit[0] != stamp:
            row = conn.execute(select(base_models).where(base_models.c.id == base_id)).first()
            hit = self._base_cache[base_id] = (stamp, BaseSpec.from_row(row))
        return hit[1]

    def _base_row(self, conn, name: str):
        row = conn.execute(select(base_models).where(base_models.c.name == name)).first()
        if row is None:
            raise NotFound(f"no registered base named {name!r}", None,
                           "see `hub base list`, or register it with `hub base add PATH`")
        return row

    def _registered_base(self, name: str) -> tuple[int, BaseSpec] | None:
        with self.db.read() as conn:
            base_id = conn.execute(select(base_models.c.id).where(base_models.c.name == name)).scalar()
            if base_id is None:
                folder = str(Path(name).expanduser().resolve()) if Path(name).expanduser().is_dir() else None
                base_id = conn.execute(select(base_models.c.id).where(base_models.c.path == folder)).scalar() \
                    if folder else None
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
        if not fresh:
            conn.execute(delete(adapter_base_fits).where(and_(adapter_base_fits.c.adapter_id == adapter_id,
                                                               adapter_base_fits.c.base_id == base_id)))
        conn.execute(insert(adapter_base_fits).values(adapter_id=adapter_id, base_id=base_id,
                                                      compatible=fits(findings),
                                                      findings_json=_stored_findings(findings), checked_at=now()))

    def _fill_fits_for_base(self, conn, base_id: int, base: BaseSpec, progress: Progress | None = None,
                            only: list[int] | None = None) -> list[tuple[int, CheckReport]]:
        """Check registered adapters (all, or the ids in ``only``) against one base and store
        the verdicts: rows in, rows out, one transaction."""
        query = select(*_ADAPTER_COLUMNS).order_by(adapters.c.name)
        rows = []
        if only is None:
            rows = conn.execute(query).all()
        else:
            for i in range(0, len(only), 500):      # stay far below any bound-parameter limit
                rows += conn.execute(query.where(adapters.c.id.in_(only[i:i + 500]))).all()
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
        if only is None:
            conn.execute(delete(adapter_base_fits).where(adapter_base_fits.c.base_id == base_id))
        else:
            for i in range(0, len(only), 500):
                conn.execute(delete(adapter_base_fits).where(and_(adapter_base_fits.c.base_id == base_id,
                                                                   adapter_base_fits.c.adapter_id.in_(only[i:i + 500]))))
        if values:
            conn.execute(insert(adapter_base_fits), values)
        self._resolve_base_ids(conn, declared)
        if progress:
            progress(len(rows), len(rows), "")
        return reports

    def _resolve_base_ids(self, conn, declared: dict[int, str | None]) -> None:
        """Point adapters without a resolved base at one they fit: the one their config
        names if it fits, else the first registered."""
        if not declared:
            return
        pending = [i for i, in conn.execute(select(adapters.c.id).where(and_(
            adapters.c.id.in_(list(declared)), adapters.c.base_id.is_(None))))]
        if not pending:
            return
        fitting: dict[int, list[int]] = {}
        for adapter_id, base_id in conn.execute(select(adapter_base_fits.c.adapter_id, adapter_base_fits.c.base_id)
                                                .where(and_(adapter_base_fits.c.adapter_id.in_(pending),
                                                            adapter_base_fits.c.compatible.is_(True)))
                                                .order_by(adapter_base_fits.c.base_id)):
            fitting.setdefault(adapter_id, []).append(base_id)
        if not fitting:
            return
        bases = {r.id: (r.name, r.path) for r in conn.execute(select(base_models.c.id, base_models.c.name,
                                                                      base_models.c.path))}
        for adapter_id, candidates in fitting.items():
            named = str(declared.get(adapter_id) or "").rstrip("/")
            chosen = next((b for b in candidates if named and named in bases[b]), candidates[0])
            conn.execute(update(adapters).where(adapters.c.id == adapter_id).values(base_id=chosen))
