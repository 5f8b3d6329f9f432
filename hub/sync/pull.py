"""Find the adapters in a Hub repo at one commit, and download one of them into a
local folder, checking every file's size and hash against the repo listing.

Only the adapter's own files travel (config, safetensors, README). A folder whose
weights exist only as pickles (adapter_model.bin/.pt) is refused before anything
is downloaded: hub never unpickles.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from hub.errors import IntegrityError, InvalidAdapter, NotFound, RemoteError, UnsafeFormat, UsageError
from hub.progress import Progress
from hub.sync import http_bounds
from hub.sync.remote import Remote
from hub.sync.spec import RepoSpec, check_remote_paths

log = logging.getLogger(__name__)

CONFIG = "adapter_config.json"
WEIGHTS = "adapter_model.safetensors"
README = "README.md"
PICKLES = ("adapter_model.bin", "adapter_model.pt", "adapter_model.pth")
WANTED = (CONFIG, WEIGHTS, README)
MAX_REPO_FILES = 100_000   # a listing longer than this is refused (endless paging stops here at the latest)


@dataclass(frozen=True)
class RemoteFile:
    path: str              # path in the repo
    size: int
    sha256: str | None     # known for LFS files
    git_oid: str           # git blob id (of the content for regular files)
    lfs: bool

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)


@dataclass(frozen=True)
class RemoteAdapter:
    repo_id: str
    subfolder: str                    # "" for the repo root
    files: tuple[RemoteFile, ...]     # the files hub would download
    pickles: tuple[str, ...] = ()     # pickle weights present in the folder

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def has_weights(self) -> bool:
        return any(f.name == WEIGHTS for f in self.files)

    def to_dict(self) -> dict:
        return {"repo_id": self.repo_id, "subfolder": self.subfolder, "size_bytes": self.size,
                "files": [f.path for f in self.files], "pickle_only": not self.has_weights and bool(self.pickles)}


@dataclass(frozen=True)
class RemoteSnapshot:
    """A repo at one resolved commit and the adapters in it."""
    repo_id: str
    revision: str | None     # what was asked for (None: default branch)
    commit: str              # what it resolved to
    adapters: tuple[RemoteAdapter, ...] = field(default_factory=tuple)

    def adapter(self, subfolder: str) -> RemoteAdapter:
        for adapter in self.adapters:
            if adapter.subfolder == subfolder:
                return adapter
        where = f"{self.repo_id}@{self.commit[:12]}"
        if not self.adapters:
            raise NotFound("no adapter in this repo (no adapter_config.json)", where,
                           "is it a PEFT adapter repo? check the id")
        listed = ", ".join(a.subfolder or "(root)" for a in self.adapters)
        raise NotFound(f"no adapter in subfolder {subfolder or '(root)'!r}", where, f"adapters here: {listed}")


def resolve(remote: Remote, spec: RepoSpec) -> str:
    """The commit a revision points to now."""
    # a named revision always: self-hosted mirrors (olah) serve only /api/models/ID/revision/REV
    with remote.errors(spec.repo_id, spec.revision):
        sha = remote.api.model_info(spec.repo_id, revision=spec.revision or "main").sha
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{40}", sha):
        raise RemoteError(f"the Hub named no valid commit for {spec.repo_id}@{spec.revision or 'main'}",
                          remote.public, "check HF_ENDPOINT; it does not behave like a Hub")
    return sha


def snapshot(remote: Remote, spec: RepoSpec) -> RemoteSnapshot:
    """Resolve the revision, list the repo at that commit, and group files into adapters."""
    from huggingface_hub.hf_api import RepoFile

    commit = resolve(remote, spec)
    where = f"{remote.public}/{spec.repo_id}@{commit[:12]}"
    log.debug("%s: revision %s is commit %s; listing its files", spec.repo_id, spec.revision, commit)
    files: list[RemoteFile] = []
    with remote.errors(spec.repo_id, commit):
        for e in remote.api.list_repo_tree(spec.repo_id, revision=commit, recursive=True):
            if isinstance(e, RepoFile):
                files.append(_remote_file(e, where))
                if len(files) > MAX_REPO_FILES:
                    raise RemoteError(f"the repo lists more than {MAX_REPO_FILES:,} files", where,
                                      "hub pulls adapter repos; check the repo id and HF_ENDPOINT")
    check_remote_paths([f.path for f in files], where)
    log.debug("%s: %d files listed", where, len(files))
    by_folder: dict[str, dict[str, RemoteFile]] = {}
    for f in files:
        folder, name = posixpath.split(f.path)
        by_folder.setdefault(folder, {})[name] = f
    adapters = []
    for folder, files in sorted(by_folder.items()):
        if CONFIG not in files:
            continue
        adapters.append(RemoteAdapter(
            spec.repo_id, folder, tuple(files[n] for n in WANTED if n in files),
            tuple(n for n in PICKLES if n in files)))
    log.debug("%s: adapters in %s", where, [a.subfolder or "." for a in adapters] or "none")
    return RemoteSnapshot(spec.repo_id, spec.revision, commit, tuple(adapters))


def _remote_file(e, where: str) -> RemoteFile:
    """A listed file, its fields checked: the listing comes from a server hub does not control."""
    sha256 = e.lfs.sha256 if e.lfs else None
    ok = (isinstance(e.path, str) and isinstance(e.size, int) and not isinstance(e.size, bool) and e.size >= 0
          and isinstance(e.blob_id, str) and (sha256 is None or isinstance(sha256, str)))
    if not ok:
        raise RemoteError("the Hub listed a file with malformed fields", where,
                          "check HF_ENDPOINT; it does not behave like a Hub")
    return RemoteFile(e.path, e.size, sha256, e.blob_id, e.lfs is not None)


def check_pullable(adapter: RemoteAdapter, commit: str) -> None:
    where = f"{adapter.repo_id}@{commit[:12]}" + (f"/{adapter.subfolder}" if adapter.subfolder else "")
    if not adapter.has_weights:
        if adapter.pickles:
            raise UnsafeFormat(f"the adapter has only pickle weights ({adapter.pickles[0]})", where,
                               "hub never unpickles; ask the author for adapter_model.safetensors, or convert a "
                               "trusted copy with PeftModel.save_pretrained(..., safe_serialization=True)")
        raise InvalidAdapter(f"{WEIGHTS} is missing", where, "the repo folder has a config but no weights")


def git_blob_oid(path: Path) -> str:
    digest = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(local: Path, expected: RemoteFile, where: str) -> None:
    size = local.stat().st_size
    if size != expected.size:
        raise IntegrityError(f"{expected.path} has {size} bytes but the Hub lists {expected.size}", where,
                             "the remote file is truncated or damaged; nothing was registered")
    if expected.lfs:
        if expected.sha256 and sha256_file(local) != expected.sha256:
            raise IntegrityError(f"{expected.path} does not match its sha256 on the Hub", where,
                                 "the remote file is damaged; nothing was registered")
    elif git_blob_oid(local) != expected.git_oid:
        raise IntegrityError(f"{expected.path} does not match its git hash on the Hub", where,
                             "the remote file is damaged; nothing was registered")


def _bar_class(progress: Progress, total: int, done: list, name: str):
    """A tqdm stand-in for huggingface_hub's downloads that reports bytes to ``progress``."""

    class Bar:
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n=1):
            done[0] += n or 0
            progress(done[0], total, name)

        def close(self):
            pass

    return Bar


def download(remote: Remote, adapter: RemoteAdapter, commit: str, dest: Path,
             progress: Progress | None = None) -> Path:
    """Download the adapter's files at ``commit`` into ``dest`` (flat), verified. Returns ``dest``.

    Files pass through ``dest/.download`` (huggingface_hub's own .incomplete and lock
    files live there) and are moved up once checked. With ``progress``, transfers are
    reported there instead of huggingface_hub's own bars.
    """
    from huggingface_hub import hf_hub_download

    check_pullable(adapter, commit)
    done = [0]
    where = f"{remote.public}/{adapter.repo_id}@{commit[:12]}"
    staging = dest / ".download"
    staging.mkdir(parents=True, exist_ok=True)
    for f in adapter.files:
        bars = {"tqdm_class": _bar_class(progress, adapter.size, done, f.name)} if progress else {}
        log.debug("downloading %s (%d bytes) from %s", f.path, f.size, where)
        with remote.errors(adapter.repo_id, commit, f.path, seconds=http_bounds.download_seconds(f.size)):
            local = Path(hf_hub_download(adapter.repo_id, f.path, revision=commit, local_dir=staging,
                                         endpoint=remote.endpoint, token=remote.token, **bars))
        if staging.resolve() not in local.resolve().parents:
            raise UsageError("download landed outside its folder", str(local), "report this")
        verify_file(local, f, where)
        shutil.move(str(local), dest / f.name)
    shutil.rmtree(staging, ignore_errors=True)
    return dest
