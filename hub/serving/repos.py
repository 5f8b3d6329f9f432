"""The registry seen as Hub model repos (what `hub serve` answers), without HTTP.

A registered name ``org/x`` is the repo ``org/x``; a plain name ``x`` is ``NAMESPACE/x``.
Each version is a commit whose id is derived from its content hash (hub.refs.version_commit);
``main`` is the latest version (or, with ``main_alias``, the version that alias names: names
without that alias then have no ``main``), ``vN`` tags name versions, each alias is a branch.
A commit's files are exactly the registered files of that version: nothing else can be named.
Weights are listed as LFS files (sha256 and size, as the Hub lists them); small text files
with their git blob id, computed once from the registered bytes.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

from hub.errors import NotFound
from hub.refs import try_parse_ref

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
LFS_MIN_SIZE = 10 * 1024 * 1024     # the Hub stores bigger files with LFS whatever their name
_REF_PREFIXES = ("refs/heads/", "refs/tags/")


class RepoNotFound(NotFound):
    hub_code = "RepoNotFound"   # the X-Error-Code the Hub sends


class RevisionNotFound(NotFound):
    hub_code = "RevisionNotFound"


class EntryNotFound(NotFound):
    hub_code = "EntryNotFound"


@dataclass(frozen=True)
class ServedFile:
    path: str
    size: int
    sha256: str
    lfs: bool
    oid: str                 # git blob id (of the LFS pointer for LFS files, as the Hub lists it)

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.oid

    def tree_entry(self) -> dict:
        doc = {"type": "file", "oid": self.oid, "size": self.size, "path": self.path}
        if self.lfs:
            doc["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": len(lfs_pointer(self.sha256, self.size))}
        return doc


@dataclass(frozen=True)
class Commit:
    repo_id: str
    name: str                # registry name
    version: int
    sha: str                 # 40-hex commit id
    ref: str                 # NAME@N, for the registry
    created_at: str
    record: object           # hub.records.AdapterRecord of this version


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def is_lfs(name: str, size: int) -> bool:
    return name.endswith(LFS_SUFFIXES) or size >= LFS_MIN_SIZE


class RegistryRepos:
    """Answers repo, revision and file questions from a hub.service.Hub (read-only)."""

    def __init__(self, hub, namespace: str = "local", main_alias: str | None = None):
        self.hub = hub
        self.namespace = namespace
        self.main_alias = main_alias
        self._oids: dict[str, str] = {}       # sha256 of a small file -> its git blob id
        self._lock = threading.Lock()

    # -- names --------------------------------------------------------------------------------

    def repo_id(self, name: str) -> str:
        return name if "/" in name else f"{self.namespace}/{name}"

    def clashes(self) -> list[tuple[str, str]]:
        """(plain name, namespaced name) pairs that would both be NAMESPACE/x."""
        from hub.listing.filters import ListFilter

        names = {r.name for r in self.hub.list(ListFilter(), full=False)}
        return sorted((n, f"{self.namespace}/{n}") for n in names if "/" not in n and f"{self.namespace}/{n}" in names)

    def name_of(self, repo_id: str) -> tuple[str, list]:
        """The registry name behind ``repo_id`` and its versions, or RepoNotFound."""
        from hub.names import check_name

        namespace, _, rest = repo_id.partition("/")
        candidates = [repo_id] + ([rest] if namespace == self.namespace and rest else [])
        for name in candidates:
            try:
                check_name(name)
            except Exception:  # noqa: BLE001 - not a name: no such repo
                continue
            versions = self.hub.versions_or_none(name)
            if versions:
                return name, versions
        raise RepoNotFound("Repository not found", repo_id, "see /api/models for the served repos")

    # -- revisions ----------------------------------------------------------------------------

    def refs(self, repo_id: str) -> dict:
        """{"branches": {name: sha}, "tags": {vN: sha}} of a repo."""
        _, versions = self.name_of(repo_id)
        branches: dict[str, str] = {}
        main = self._main_version(versions)
        if main is not None:
            branches["main"] = main.commit
        for v in versions:
            for alias in v.aliases:
                branches[alias] = v.commit
        return {"branches": branches, "tags": {f"v{v.version}": v.commit for v in versions}}

    def _main_version(self, versions):
        if self.main_alias:
            return next((v for v in versions if self.main_alias in v.aliases), None)
        return next((v for v in versions if v.latest), None)

    def _pick(self, versions, ref):
        if ref.is_latest:                          # main, latest
            return self._main_version(versions)
        if ref.commit is not None:
            return next((v for v in versions if v.commit == ref.commit), None)
        if ref.version is not None:
            return next((v for v in versions if v.version == ref.version), None)
        return next((v for v in versions if ref.alias in v.aliases), None)

    def commit(self, repo_id: str, revision: str | None) -> Commit:
        """The version ``revision`` (main, vN, N, an alias, a 40-hex commit id) of ``repo_id``."""
        name, versions = self.name_of(repo_id)
        rev = revision or "main"
        for prefix in _REF_PREFIXES:
            rev = rev.removeprefix(prefix)
        parsed = try_parse_ref(f"{name}@{rev}")     # the one NAME@VERSION|ALIAS grammar (hub.refs)
        found = None if parsed is None else self._pick(versions, parsed)
        if found is None:
            raise RevisionNotFound(f"Invalid rev id: {revision}", repo_id, "see /api/models/REPO/refs")
        ref = f"{name}@{found.version}"
        return Commit(repo_id, name, found.version, found.commit, ref, found.created_at, self.hub.get(ref))

    # -- files --------------------------------------------------------------------------------

    def files(self, commit: Commit) -> list[ServedFile]:
        return [self._served(commit, f) for f in commit.record.files]

    def file(self, commit: Commit, path: str) -> ServedFile:
        """Only a registered file name of this version, compared as an exact string: no path,
        encoding or traversal reaches anything else."""
        for f in commit.record.files:
            if f["name"] == path:
                return self._served(commit, f)
        raise EntryNotFound(f"Entry not found: {path[:200]!r}", commit.repo_id, "see the repo's tree")

    def _served(self, commit: Commit, f: dict) -> ServedFile:
        if is_lfs(f["name"], f["size"]):
            oid = git_blob_oid(lfs_pointer(f["sha256"], f["size"]))
            return ServedFile(f["name"], f["size"], f["sha256"], True, oid)
        with self._lock:
            oid = self._oids.get(f["sha256"])
        if oid is None:
            with self.open(commit, f["name"]) as fh:
                oid = git_blob_oid(fh.read())
            with self._lock:
                self._oids[f["sha256"]] = oid
        return ServedFile(f["name"], f["size"], f["sha256"], False, oid)

    def open(self, commit: Commit, name: str):
        """The registered bytes, through the checked read (hub.checked_files via
        Hub.open_adapter_file: no symbolic link followed, size and sha256 as recorded for
        linked adapters)."""
        return self.hub.open_adapter_file(commit.record, name)

    # -- documents ----------------------------------------------------------------------------

    def model_doc(self, commit: Commit, blobs: bool = False) -> dict:
        rec = commit.record
        base = rec.base_model or rec.base
        tags = ["peft", "safetensors", "lora", *([f"base_model:{base}", f"base_model:adapter:{base}"] if base else []),
                *rec.tags]
        siblings = [{"rfilename": f["name"]} for f in rec.files]
        if blobs:  # model_info(files_metadata=True)
            siblings = []
            for f in self.files(commit):
                sibling = {"rfilename": f.path, "size": f.size, "blobId": f.oid}
                if f.lfs:
                    lfs = f.tree_entry()["lfs"]
                    sibling["lfs"] = {"sha256": lfs["oid"], "size": lfs["size"], "pointerSize": lfs["pointerSize"]}
                siblings.append(sibling)
        doc = {
            "_id": hashlib.sha1(commit.repo_id.encode()).hexdigest()[:24], "id": commit.repo_id,
            "modelId": commit.repo_id, "author": commit.repo_id.split("/")[0], "sha": commit.sha,
            "lastModified": _iso_z(commit.created_at), "createdAt": _iso_z(commit.created_at), "private": False,
            "disabled": False, "gated": False, "downloads": 0, "likes": 0, "library_name": "peft",
            "tags": list(dict.fromkeys(tags)), "siblings": siblings,
            "usedStorage": sum(f["size"] for f in rec.files),
            "cardData": {"library_name": "peft", **({"base_model": base} if base else {})},
        }
        return doc


def _iso_z(stamp: str) -> str:
    """The Hub's timestamp form (2026-12-04T07:11:47.000Z)."""
    from datetime import datetime, timezone

    try:
        when = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return stamp
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


__all__ = ["RegistryRepos", "ServedFile", "Commit", "RepoNotFound", "RevisionNotFound", "EntryNotFound",
           "git_blob_oid", "lfs_pointer"]
