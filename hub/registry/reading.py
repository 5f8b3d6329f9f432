"""The one reading engine: what `show`, `versions`, `models`, `base list/show`, `status` and
`check --base` read, written once over a statement runner.

A runner executes a named statement of hub.registry.statements with values and returns
``Row``s. Two runners exist: ``Alchemy`` (a SQLAlchemy connection: any database; what
``hub.service.Hub`` uses) and hub.registry.fastread's ``SQLiteText`` (the stdlib sqlite3
module with SQL that SQLAlchemy compiled once; what a fresh CLI process uses, so that it
need not import SQLAlchemy). Both give the same rows, so every caller gets the same
answers. This module imports no SQLAlchemy.
"""

from __future__ import annotations

import json
from typing import Protocol

from hub.errors import NotFound, UsageError
from hub.refs import parse_ref, try_parse_ref, version_commit
from hub.registry.rows import adapter_from_row, base_record, model_record
from hub.results import BaseRecord, BatchResult, CheckReport, MergedModelRecord, RemoteState, VersionRecord


class Row(dict):
    """One result row: a mapping that also answers ``row.column``, like SQLAlchemy's."""

    __slots__ = ()

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Runner(Protocol):
    def rows(self, statement: str, /, **values) -> list[Row]: ...


class Alchemy:
    """Runs the statements on a SQLAlchemy connection (inside ``Database.read()``)."""

    def __init__(self, conn):
        self.conn = conn

    def rows(self, statement_name: str, /, **values) -> list[Row]:
        from hub.registry.statements import statement

        return [Row(r._mapping) for r in self.conn.execute(statement(statement_name), values)]


class Stale(Exception):
    """A stored answer is out of date: the service must compute (and store) it."""


def _first(rows: list[Row]) -> Row | None:
    return rows[0] if rows else None


# -- adapters --------------------------------------------------------------------------------

def resolve(run: Runner, ref) -> Row | None:
    """The adapters row (plus base_name) a parsed ref (hub.refs.Ref) names, or None."""
    if ref.version is not None:
        return _first(run.rows("adapter.version", name=ref.name, version=ref.version))
    if ref.alias is not None:
        return _first(run.rows("adapter.alias", name=ref.name, alias=ref.alias))
    if ref.commit is not None:
        return next((r for r in run.rows("adapter.versions", name=ref.name)
                     if version_commit(r.sha256) == ref.commit), None)
    return _first(run.rows("adapter.latest", name=ref.name))


def resolve_text(run: Runner, text: str) -> Row | None:
    """Like resolve, for text that may not be a name at all (then None)."""
    ref = try_parse_ref(text)
    return None if ref is None else resolve(run, ref)


def versions_of(run: Runner, name: str) -> list[Row]:
    """Every version of ``name``, oldest first."""
    return run.rows("adapter.versions", name=name)


def count(run: Runner) -> int:
    return run.rows("adapter.count")[0].n


def tags_of(run: Runner, adapter_id: int) -> list[str]:
    return [r.tag for r in run.rows("adapter.tags", adapter_id=adapter_id)]


def files_of(run: Runner, adapter_id: int) -> list[dict]:
    return [{"name": r.name, "size": r.size, "sha256": r.sha256} for r in run.rows("adapter.files",
                                                                                     adapter_id=adapter_id)]


def lineage_of(run: Runner, child_type: str, child_id: int) -> list[dict]:
    return [{"type": r.parent_type, "name": r.parent_name, "sha256": r.parent_sha256, "weight": r.weight,
             "present": r.parent_id is not None, **({"version": r.parent_version} if r.parent_version else {})}
            for r in run.rows("lineage", child_type=child_type, child_id=child_id)]


def remotes_of(run: Runner, adapter_id: int) -> list[dict]:
    return [{"direction": r.direction, "repo_id": r.repo_id, "revision": r.revision, "subfolder": r.subfolder,
             "commit": r.commit, "remote_commit": r.remote_commit,
             "checked_at": r.checked_at.isoformat() if r.checked_at else None}
            for r in run.rows("adapter.remotes", adapter_id=adapter_id)]


def aliases_of(run: Runner, adapter_id: int) -> list[str]:
    return [r.alias for r in run.rows("adapter.aliases", adapter_id=adapter_id)]


def aliases_by_adapter(run: Runner, name: str) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for r in run.rows("name.aliases", name=name):
        out.setdefault(r.adapter_id, []).append(r.alias)
    return out


def get_adapter(run: Runner, name: str):
    """The AdapterRecord ``NAME[@VERSION|ALIAS]`` names, with files, lineage, remotes, aliases."""
    row = resolve_text(run, name)
    if row is None:
        raise NotFound(f"no adapter named {name!r}", None, "see `hub list` for registered names")
    return adapter_from_row(row, tags_of(run, row.id), files=files_of(run, row.id),
                            lineage=lineage_of(run, "adapter", row.id), remotes=remotes_of(run, row.id),
                            base_name=row.base_name, aliases=aliases_of(run, row.id))


def versions(run: Runner, name: str) -> list[VersionRecord]:
    """Every version of ``name`` (a plain name), oldest first."""
    ref = parse_ref(name)
    if not ref.is_latest:
        raise UsageError(f"versions takes a name, not a version ({name!r})", None, f"hub versions {ref.name}")
    found = versions_or_none(run, ref.name)
    if not found:
        raise NotFound(f"no adapter named {ref.name!r}", None, "see `hub list` for registered names")
    return found


def versions_or_none(run: Runner, name: str) -> list[VersionRecord]:
    """Every version of the plain name ``name`` (no @), oldest first; [] if none."""
    rows = versions_of(run, name)
    if not rows:
        return []
    aliases = aliases_by_adapter(run, name)
    tags: dict[int, list[str]] = {}
    for r in run.rows("name.tags", name=name):
        tags.setdefault(r.adapter_id, []).append(r.tag)
    return [VersionRecord(
        name=r.name, version=r.version, sha256=r.sha256, commit=version_commit(r.sha256),
        created_at=r.created_at.isoformat() if hasattr(r.created_at, "isoformat") else str(r.created_at),
        source={"kind": r.source_kind, "path": r.source_path, "repo": r.source_repo,
                "revision": r.source_revision, "commit": r.source_commit},
        aliases=aliases.get(r.id, []), latest=bool(r.latest), size_bytes=r.size_bytes,
        tags=sorted(tags.get(r.id, ()))) for r in rows]


# -- bases and stored verdicts ---------------------------------------------------------------

def base_row(run: Runner, name: str) -> Row:
    row = _first(run.rows("base.by_name", name=name))
    if row is None:
        raise NotFound(f"no registered base named {name!r}", None,
                       "see `hub base list`, or register it with `hub base add PATH`")
    return row


def list_bases(run: Runner) -> list[BaseRecord]:
    counts = {r.base_id: r.n for r in run.rows("bases.fit_counts")}
    return [base_record(r, counts.get(r.id, 0)) for r in run.rows("bases")]


def get_base(run: Runner, name: str) -> BaseRecord:
    """One registered base with its adaptable modules (hub.compat's module table)."""
    from dataclasses import replace

    from hub.compat.specs import BaseSpec

    row = base_row(run, name)
    fitting = run.rows("base.fit_count", base_id=row.id)[0].n
    spec = BaseSpec.from_row(row)
    modules = {p: {"kind": m.kind, "in_features": m.in_features, "out_features": m.out_features,
                   "dtype": m.dtype, **({"quantized": m.quantized} if m.quantized else {}),
                   **({"tied_to": m.tied_to} if m.tied_to else {})}
               for p, m in sorted(spec.modules.items())}
    return replace(base_record(row, fitting or 0), modules=modules)


def base_verdicts(run: Runner, base_id: int) -> list[Row]:
    """(id, name, updated_at, findings_json, checked_at) of every adapter against the base,
    by name; findings_json and checked_at are None where no verdict is stored."""
    return run.rows("base.verdicts", base_id=base_id)


def is_stale(row: Row) -> bool:
    return row.checked_at is None or row.checked_at < row.updated_at


def stored_batch(run: Runner, base: str) -> BatchResult:
    """`hub check --base NAME` from the stored verdicts; Stale when one is missing or older
    than its adapter (or NAME is no registered base's name): the service checks then."""
    from hub.findings import Finding

    row = _first(run.rows("base.by_name", name=base))
    if row is None:
        raise Stale(base)
    rows = base_verdicts(run, row.id)
    if any(is_stale(r) for r in rows):
        raise Stale(base)
    return BatchResult(row.name, [CheckReport("base", r.name, row.name,
                                              [Finding(**f) for f in json.loads(r.findings_json)]) for r in rows])


# -- merged models and remotes ---------------------------------------------------------------

def list_models(run: Runner) -> list[MergedModelRecord]:
    return [model_record(r, lineage_of(run, "model", r.id)) for r in run.rows("models")]


def get_model(run: Runner, name: str) -> MergedModelRecord:
    row = _first(run.rows("model.by_name", name=name))
    if row is None:
        raise NotFound(f"no merged model named {name!r}", None, "see `hub models` for the recorded ones")
    return model_record(row, lineage_of(run, "model", row.id))


def recorded_remotes(run: Runner, name: str | None = None) -> list[Row]:
    """Every recorded remote (of adapter ``name``), by adapter name."""
    if name is None:
        return run.rows("remotes")
    if resolve_text(run, name) is None:
        raise NotFound(f"no adapter named {name!r}", None, "see `hub list`")
    return run.rows("remotes.of_name", name=name)


def unchecked_states(rows: list[Row]) -> list[RemoteState]:
    """What `hub status --no-check` shows: the recorded remotes as last seen."""
    return [RemoteState(r.name, r.direction, r.repo_id, r.revision, r.subfolder, r.commit, r.remote_commit,
                        "unchecked") for r in rows]
