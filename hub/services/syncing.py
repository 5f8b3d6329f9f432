"""Hub sync as service operations: pull, push, remote search and remote status.

Network work is in hub.sync (the only huggingface_hub user); this mixin ties it to
the registry. A pull downloads into a fresh folder under HUB_HOME/tmp, verifies
sizes and hashes against the repo listing, then registers through the same
``add`` path as `hub add`, with source = repo + requested revision + resolved
commit; the remote is recorded in the same transaction. The temp folder is
removed whatever happens, so a failed pull leaves the registry and the store as
they were.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from hub.errors import AlreadyExists, HubError, NotFound, UsageError
from hub.names import check_name, name_from_folder
from hub.records import AdapterRecord
from hub.registry import adapters as q
from hub.registry import reading
from hub.registry import remotes as qr
from hub.results import RemoteState


@dataclass(frozen=True)
class PullResult:
    status: str                  # added | updated | unchanged | exists | failed
    name: str | None
    repo_id: str
    revision: str
    commit: str
    subfolder: str
    message: str
    record: AdapterRecord | None = None

    def to_dict(self) -> dict:
        return {"status": self.status, "name": self.name, "repo_id": self.repo_id, "revision": self.revision,
                "commit": self.commit, "subfolder": self.subfolder, "message": self.message}


@dataclass(frozen=True)
class PushOutcome:
    name: str
    result: object               # hub.sync.push.PushResult
    base_model: str | None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"name": self.name, **self.result.to_dict(), "base_model": self.base_model, "warnings": self.warnings}


@dataclass(frozen=True)
class SearchHit:
    model: object                # hub.sync.search.RemoteModel
    registered: list[str]        # registry names tied to this repo

    def to_dict(self) -> dict:
        return {**self.model.to_dict(), "registered": self.registered}


class SyncService:
    """Pull, push, remote search and status. Needs the adapters (a pull registers through
    ``add``), versions, trash (an update retires the old commit) and merging (pushing a
    merged model) services."""

    def __init__(self, ctx, adapters, versions, trash, merging):
        self.db, self.store = ctx.db, ctx.store
        self.adapters, self.versions, self.trash, self.merging = adapters, versions, trash, merging

    # -- registry side ---------------------------------------------------------------------

    def _pulled_at(self, repo_id: str, subfolder: str, commit: str) -> str | None:
        with self.db.read() as conn:
            return qr.pulled_at(conn, repo_id, subfolder, commit)

    def _record_remote(self, name: str, **values) -> None:
        with self.db.write() as conn:
            row = q.get_row(conn, name)
            if row is None:
                raise NotFound(f"no adapter named {name!r}", None, "see `hub list`")
            qr.upsert(conn, row.id, **values)

    # -- pull ------------------------------------------------------------------------------

    def remote_adapters(self, spec: str):
        """The adapters a repo holds at a revision (nothing is downloaded)."""
        from hub.sync import pull as hp
        from hub.sync.remote import Remote
        from hub.sync.spec import parse_spec

        return hp.snapshot(Remote.from_env(), parse_spec(spec))

    def pull(self, spec: str, subfolder: str | None = None, name: str | None = None, all_adapters: bool = False,
             tags=(), progress=None, new_version: bool = False) -> list[PullResult]:
        """Pull one adapter (or every adapter with ``all_adapters``) from ``REPO_ID[@REV]``.

        ``progress(bytes_done, bytes_total, file)`` replaces huggingface_hub's own bars.
        """
        from hub.sync import pull as hp
        from hub.sync.remote import Remote
        from hub.sync.spec import check_subfolder, parse_spec

        parsed = parse_spec(spec)
        if name is not None:
            check_name(name)
        elif new_version:
            raise UsageError("--new-version needs --name NAME (the name the version is added to)", None,
                             "pass --name NAME")
        if new_version and all_adapters:
            raise UsageError("--new-version adds one adapter; --all pulls many", None, "pass one of them")
        remote = Remote.from_env()
        snap = hp.snapshot(remote, parsed)
        if all_adapters:
            if subfolder is not None:
                raise UsageError("--all and --subfolder exclude each other", None, "pass one of them")
            if not snap.adapters:
                snap.adapter("")  # raises the "no adapter in this repo" error
            results = []
            for adapter in snap.adapters:
                label = name_from_folder(adapter.subfolder.replace("/", "-")) if adapter.subfolder else None
                wanted = f"{name}-{label}" if (name and label) else (name or None)
                try:
                    results.append(self._pull_one(remote, snap, adapter, wanted, tags, progress))
                except HubError as exc:
                    results.append(PullResult("failed", None, snap.repo_id, parsed.revision or "main", snap.commit,
                                              adapter.subfolder, exc.line()))
            return results
        sub = check_subfolder(subfolder)
        if subfolder is None and len(snap.adapters) > 1:
            listed = ", ".join(a.subfolder or "(root)" for a in snap.adapters)
            raise UsageError(f"{snap.repo_id} holds {len(snap.adapters)} adapters ({listed})", None,
                             "pick one with --subfolder PATH or pull all with --all")
        if subfolder is None and len(snap.adapters) == 1:
            sub = snap.adapters[0].subfolder
        return [self._pull_one(remote, snap, snap.adapter(sub), name, tags, progress, new_version)]

    def _pull_one(self, remote, snap, adapter, name: str | None, tags, progress=None,
                  new_version: bool = False) -> PullResult:
        from hub.sync import pull as hp

        revision = snap.revision or "main"
        sub = adapter.subfolder
        hp.check_pullable(adapter, snap.commit)
        base = PullResult("unchanged", None, snap.repo_id, revision, snap.commit, sub, "")
        have = self._pulled_at(snap.repo_id, sub, snap.commit)
        if have is not None:
            self._record_remote(have, direction="pull", repo_id=snap.repo_id, revision=revision, subfolder=sub,
                                commit=snap.commit, remote_commit=snap.commit)
            return _with(base, name=have, record=self.adapters.get(have),
                         message=f"{have} is already at {snap.commit[:12]}; nothing downloaded")
        if name is None:
            repo_name = snap.repo_id.rsplit("/", 1)[-1]
            wanted = name_from_folder(f"{repo_name}-{sub.replace('/', '-')}" if sub else repo_name)
            name = self.adapters._free_name(wanted)
        elif not new_version:
            with self.db.read() as conn:
                if q.name_taken(conn, name):
                    raise AlreadyExists(f"the name {name!r} is already taken", None,
                                        "choose another with --name, add it as a version with --new-version, "
                                        "or `hub pull --update` it")
        pending = {"direction": "pull", "repo_id": snap.repo_id, "revision": revision, "subfolder": sub,
                   "commit": snap.commit, "remote_commit": snap.commit}
        source = {"kind": "hub", "path": f"{remote.public}/{snap.repo_id}", "repo": snap.repo_id,
                  "revision": revision, "commit": snap.commit, "subfolder": sub or None}
        folder = self.store.temp_path("pull")
        try:
            folder.mkdir(parents=True)
            hp.download(remote, adapter, snap.commit, folder, progress)
            added = self.adapters.add(folder, name=name, tags=tags, source=source, new_version=new_version,
                                      remote=pending)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if added.status == "exists":
            self._record_remote(added.record.name, **pending)
            return _with(base, status="exists", name=added.record.name, record=self.adapters.get(added.record.name),
                         message=f"same content is already registered as {added.record.name!r}; remote recorded")
        label = name if added.record.version == 1 else f"{name}@{added.record.version}"
        return _with(base, status="added", name=label, record=added.record,
                     message=f"pulled {label} from {snap.repo_id}@{snap.commit[:12]}")

    def pull_update(self, name: str, progress=None) -> PullResult:
        """Fetch the newer commit of the revision ``name`` was pulled from, and swap it in."""
        from hub.sync import pull as hp
        from hub.sync.remote import Remote
        from hub.sync.spec import RepoSpec

        record = self.adapters.get(name)
        pulled = [r for r in record.remotes if r["direction"] == "pull"]
        if not pulled:
            raise NotFound(f"{name} was not pulled from the Hub", None, "use `hub pull REPO_ID` to pull an adapter")
        track = pulled[0]
        remote = Remote.from_env()
        snap = hp.snapshot(remote, RepoSpec(track["repo_id"], track["revision"]))
        sub = track["subfolder"] or ""
        base = PullResult("unchanged", name, snap.repo_id, track["revision"], snap.commit, sub, "", record)
        if snap.commit == track["commit"]:
            self._record_remote(name, direction="pull", repo_id=snap.repo_id, revision=track["revision"],
                                subfolder=sub, commit=snap.commit, remote_commit=snap.commit)
            return _with(base, message=f"{name} is up to date ({snap.repo_id}@{track['revision']} "
                                       f"is still {snap.commit[:12]})")
        adapter = snap.adapter(sub)
        hp.check_pullable(adapter, snap.commit)
        # a name with several versions keeps them: the new commit becomes its next version
        versioned = len(self.versions.versions_or_none(record.name)) > 1
        if versioned:
            outcome = self._pull_one(remote, snap, adapter, record.name, record.tags, progress, new_version=True)
        else:
            staging_name = self.adapters._free_name(f"{name}-{snap.commit[:8]}"[:200])
            outcome = self._pull_one(remote, snap, adapter, staging_name, record.tags, progress)
        if outcome.status in ("unchanged", "exists"):
            if outcome.name != name:
                raise AlreadyExists(f"the new commit's adapter is already registered as {outcome.name!r}", None,
                                    f"keep using {outcome.name}, or `hub rm` one of them")
            self._record_remote(name, direction="pull", repo_id=snap.repo_id, revision=track["revision"],
                                subfolder=sub, commit=snap.commit, remote_commit=snap.commit)
            return _with(base, record=self.adapters.get(name),
                         message=f"{snap.repo_id} moved to {snap.commit[:12]} but the adapter files are the same")
        if versioned:
            return _with(base, status="updated", name=outcome.name, record=outcome.record,
                         message=f"updated {record.name}: {track['commit'][:12]} -> {snap.commit[:12]} "
                                 f"as {outcome.name}")
        # the new version is registered under a staging name: retire the old one, take over its name
        self.trash.remove(name)
        self.adapters.rename(staging_name, name)
        return _with(base, status="updated", record=self.adapters.get(name),
                     message=f"updated {name}: {track['commit'][:12]} -> {snap.commit[:12]}")

    # -- push ------------------------------------------------------------------------------

    def push(self, name: str, repo_id: str, private: bool = False, revision: str | None = None,
             create_pr: bool = False, base_model: str | None = None, subfolder: str | None = None) -> PushOutcome:
        """Upload a registered adapter (or merged model) with a generated model card.

        The adapter's remote is recorded in the registry. The card names a base model
        only if the Hub knows it (the Hub refuses cards whose base_model it does not host).
        """
        from hub.sync import model_card
        from hub.sync.remote import Remote
        from hub.sync.spec import check_repo_id, check_revision, check_subfolder

        check_repo_id(repo_id)
        if revision:
            check_revision(revision)
            if revision.startswith("refs/"):
                raise UsageError(f"--revision takes a branch name, not {revision!r}", None,
                                 "use --create-pr to open a pull request")
        if base_model:
            check_repo_id(base_model)
        sub = check_subfolder(subfolder)
        with self.db.read() as conn:
            is_adapter = q.get_row(conn, name) is not None
        merged = None if is_adapter else self._merged_model(name)
        if merged is None:
            record = self.adapters.get(name)   # raises "no adapter named ..." for unknown names
            folder = self.adapters.adapter_dir(name)
            local = {f["name"]: folder / f["name"] for f in record.files}
            declared = record.base_model
        else:
            folder = Path(merged.path)
            if not folder.is_dir():
                raise NotFound(f"the folder of merged model {name!r} is gone", merged.path, "merge it again")
            local = _folder_files(folder)
            declared = merged.base_name
        existing = local.pop("README.md", None)
        existing = existing.read_text(encoding="utf-8", errors="replace") if existing else None
        remote = Remote.from_env()
        hub_base, warnings = self._card_base(remote, base_model, declared, existing)
        if merged is None:
            card = model_card.render(record, repo_id, hub_base, existing)
        else:
            card = model_card.render_merged(merged, repo_id, hub_base, existing)
        prefix = f"{sub}/" if sub else ""
        files: dict = {prefix + rel: path for rel, path in local.items()}
        files[prefix + "README.md"] = card.encode("utf-8")
        from hub.sync.push import upload

        label = record.sha256[:12] if merged is None else "merged model"
        result = upload(remote, repo_id, files, message=f"hub push {name} ({label})", private=private,
                        branch=revision, create_pr=create_pr)
        if merged is None:
            self._record_remote(name, direction="push", repo_id=repo_id, revision=result.revision, subfolder=sub,
                                commit=result.commit, remote_commit=result.commit)
        return PushOutcome(name, result, hub_base, warnings + list(result.notes))

    def _merged_model(self, name: str):
        try:
            return self.merging.get_model(name)
        except NotFound:
            return None

    @staticmethod
    def _card_base(remote, explicit: str | None, declared: str | None, existing: str | None):
        """(base model id for the card or None, warnings)."""
        from hub.sync import model_card
        from hub.sync.search import model_exists

        if explicit:
            if model_exists(remote, explicit) is False:
                raise NotFound(f"base model {explicit!r} is not on the Hub", remote.public,
                               "pass the Hub id of the base (e.g. meta-llama/Llama-3.2-1B) or leave --base-model out")
            return explicit, []
        candidate = model_card.hub_base_model(declared) or model_card.card_base_model(existing)
        if candidate is None:
            said = f"declared: {declared!r}" if declared else "the adapter declares none"
            return None, [f"no Hub base model known ({said}); "
                          "pass --base-model ORG/NAME so the Hub lists it under its base"]
        if model_exists(remote, candidate) is False:
            return None, [f"declared base {candidate!r} is not on the Hub, so the card names no base_model; "
                          "pass --base-model ORG/NAME"]
        return candidate, []

    # -- search and status -------------------------------------------------------------------

    def search_remote(self, base: str | None = None, author: str | None = None, query: str | None = None,
                      limit: int = 50) -> list[SearchHit]:
        from hub.sync.remote import Remote
        from hub.sync.search import search

        if limit < 1:
            raise UsageError("--limit must be at least 1", None, "pass e.g. --limit 20")
        models = search(Remote.from_env(), base=base, author=author, query=query, limit=limit)
        with self.db.read() as conn:
            known = qr.names_by_repo(conn)
        return [SearchHit(m, sorted(known.get(m.repo_id, ()))) for m in models]

    def remote_status(self, name: str | None = None, check: bool = True) -> list[RemoteState]:
        """Every recorded remote and whether its revision moved on since we pulled or pushed."""
        from hub.sync.remote import Remote, offline_requested
        from hub.sync.search import head

        with self.db.read() as conn:
            rows = reading.recorded_remotes(reading.Alchemy(conn), name)
        check = check and bool(rows) and not offline_requested()
        if not check:
            return reading.unchecked_states(rows)
        remote = Remote.from_env()
        states = []
        for r in rows:
            now = head(remote, r.repo_id, r.revision)
            with self.db.write() as conn:
                qr.set_remote_commit(conn, r.id, now)
            state = "gone" if now is None else ("up-to-date" if now == r.commit else "moved")
            states.append(RemoteState(r.name, r.direction, r.repo_id, r.revision, r.subfolder, r.commit, now, state))
        return states


def _folder_files(folder: Path) -> dict[str, Path]:
    """Regular, non-hidden files under ``folder`` by relative POSIX path (links must stay inside)."""
    root = folder.resolve()
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if root not in path.resolve().parents:
            raise UsageError("a file links outside the model folder", str(path), "copy the real file in")
        out[rel.as_posix()] = path
    return out


def _with(result: PullResult, **changes) -> PullResult:
    from dataclasses import replace

    return replace(result, **changes)
