"""On-disk state of the fake Hub: repos as git-like commit snapshots.

Layout under ``root``::

    blobs/<sha256>                          file contents, content-addressed
    repos/<namespace>/<name>/repo.json      {"private", "created_at"}
    repos/<namespace>/<name>/refs.json      {"branches": {..}, "tags": {..}, "prs": {"1": {..}}}
    repos/<namespace>/<name>/commits/<sha>.json
                                            {"parents", "title", "message", "author", "date",
                                             "files": {path: {"size", "sha256", "oid", "lfs"}}}

A commit is a full snapshot of the tree (small repos, no packing), its id the
sha1 of its canonical JSON: 40 hex digits like git's. The server process and
the tests share this class, so tests can plant states the real Hub would
refuse (a path with ``..``) or damage a blob, without a back door in the API.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

SHA1_RE = re.compile(r"^[0-9a-f]{40}$")
PR_RE = re.compile(r"^refs/pr/(\d+)$")

# What huggingface.co writes in the first commit of a new model repo (abridged).
DEFAULT_GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in ("*.bin", "*.ckpt", "*.gguf", "*.h5", "*.msgpack", "*.npy", "*.onnx", "*.pkl", "*.pt",
                    "*.pth", "*.safetensors", "*.tar.gz", "*.zip", "*tfevents*")
)


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass(frozen=True)
class FileEntry:
    size: int
    sha256: str
    oid: str          # git blob id: of the content, or of the LFS pointer for LFS files
    lfs: bool

    @classmethod
    def regular(cls, data: bytes) -> FileEntry:
        return cls(len(data), hashlib.sha256(data).hexdigest(), git_blob_oid(data), False)

    @classmethod
    def large(cls, sha256: str, size: int) -> FileEntry:
        return cls(size, sha256, git_blob_oid(lfs_pointer(sha256, size)), True)


@dataclass(frozen=True)
class Commit:
    sha: str
    parents: tuple[str, ...]
    title: str
    message: str
    author: str
    date: float
    files: dict[str, FileEntry]


class RepoStore:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        (self.root / "blobs").mkdir(parents=True, exist_ok=True)
        (self.root / "repos").mkdir(parents=True, exist_ok=True)
        # one writer at a time inside the server process; reads never lock
        self.lock = threading.RLock()

    # -- small helpers -----------------------------------------------------

    @staticmethod
    def _write_json(path: Path, doc) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))
        os.replace(tmp, path)

    def _repo_dir(self, repo_id: str) -> Path:
        return self.root / "repos" / repo_id

    # -- blobs -------------------------------------------------------------

    def blob_path(self, sha256: str) -> Path:
        return self.root / "blobs" / sha256

    def has_blob(self, sha256: str, size: int | None = None) -> bool:
        path = self.blob_path(sha256)
        return path.is_file() and (size is None or path.stat().st_size == size)

    def put_blob(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        if not self.has_blob(sha):
            tmp = self.blob_path(f".{sha}.{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, self.blob_path(sha))
        return sha

    def put_blob_stream(self, chunks, sha256: str, size: int) -> bool:
        """Store streamed content if it hashes to ``sha256`` and has ``size`` bytes."""
        digest, total = hashlib.sha256(), 0
        tmp = self.blob_path(f".{sha256}.{threading.get_ident()}.part")
        with open(tmp, "wb") as out:
            for chunk in chunks:
                digest.update(chunk)
                total += len(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256 or total != size:
            tmp.unlink()
            return False
        os.replace(tmp, self.blob_path(sha256))
        return True

    def read_blob(self, sha256: str) -> bytes:
        return self.blob_path(sha256).read_bytes()

    # -- repos -------------------------------------------------------------

    def exists(self, repo_id: str) -> bool:
        return (self._repo_dir(repo_id) / "repo.json").is_file()

    def repo_ids(self) -> list[str]:
        return sorted(str(p.parent.relative_to(self.root / "repos")) for p in (self.root / "repos").glob("*/*/repo.json"))

    def meta(self, repo_id: str) -> dict:
        return json.loads((self._repo_dir(repo_id) / "repo.json").read_text())

    def create_repo(self, repo_id: str, private: bool, author: str) -> str:
        """New repo with the Hub's initial commit (a .gitattributes on main); returns its sha."""
        with self.lock:
            self._write_json(self._repo_dir(repo_id) / "repo.json",
                             {"private": bool(private), "created_at": time.time()})
            self._write_json(self._repo_dir(repo_id) / "refs.json", {"branches": {}, "tags": {}, "prs": {}})
            data = DEFAULT_GITATTRIBUTES.encode()
            self.put_blob(data)
            sha = self.make_commit(repo_id, None, {".gitattributes": FileEntry.regular(data)}, "initial commit", "", author)
            self.set_ref(repo_id, "branches", "main", sha)
            return sha

    def delete_repo(self, repo_id: str) -> None:
        import shutil

        with self.lock:
            shutil.rmtree(self._repo_dir(repo_id))

    def set_private(self, repo_id: str, private: bool) -> None:
        with self.lock:
            meta = self.meta(repo_id)
            meta["private"] = bool(private)
            self._write_json(self._repo_dir(repo_id) / "repo.json", meta)

    # -- refs --------------------------------------------------------------

    def refs(self, repo_id: str) -> dict:
        return json.loads((self._repo_dir(repo_id) / "refs.json").read_text())

    def set_ref(self, repo_id: str, kind: str, name: str, sha: str | None) -> None:
        """kind: branches | tags | prs; sha None deletes the ref."""
        with self.lock:
            refs = self.refs(repo_id)
            if sha is None:
                refs[kind].pop(name, None)
            else:
                refs[kind][name] = sha
            self._write_json(self._repo_dir(repo_id) / "refs.json", refs)

    def open_pr(self, repo_id: str, sha: str) -> int:
        with self.lock:
            number = max((int(n) for n in self.refs(repo_id)["prs"]), default=0) + 1
            self.set_ref(repo_id, "prs", str(number), sha)
            return number

    def resolve(self, repo_id: str, revision: str) -> str | None:
        """Revision -> commit sha, the way the Hub resolves it: branch, tag,
        refs/heads/X, refs/tags/X, refs/pr/N, or a full commit id."""
        refs = self.refs(repo_id)
        if revision in refs["branches"]:
            return refs["branches"][revision]
        if revision in refs["tags"]:
            return refs["tags"][revision]
        for prefix, kind in (("refs/heads/", "branches"), ("refs/tags/", "tags")):
            if revision.startswith(prefix) and revision[len(prefix):] in refs[kind]:
                return refs[kind][revision[len(prefix):]]
        if m := PR_RE.match(revision):
            return refs["prs"].get(m.group(1))
        if SHA1_RE.match(revision) and (self._repo_dir(repo_id) / "commits" / f"{revision}.json").is_file():
            return revision
        return None

    def branch_of(self, repo_id: str, revision: str) -> tuple[str, str] | None:
        """A revision a commit can be pushed to: -> (kind, name) or None."""
        refs = self.refs(repo_id)
        name = revision[len("refs/heads/"):] if revision.startswith("refs/heads/") else revision
        if name in refs["branches"]:
            return "branches", name
        if m := PR_RE.match(revision):
            if m.group(1) in refs["prs"]:
                return "prs", m.group(1)
        return None

    # -- commits -----------------------------------------------------------

    def commit(self, repo_id: str, sha: str) -> Commit:
        doc = json.loads((self._repo_dir(repo_id) / "commits" / f"{sha}.json").read_text())
        files = {path: FileEntry(**entry) for path, entry in doc["files"].items()}
        return Commit(sha, tuple(doc["parents"]), doc["title"], doc["message"], doc["author"], doc["date"], files)

    def make_commit(self, repo_id: str, parent: str | None, files: dict[str, FileEntry], title: str,
                    message: str, author: str) -> str:
        """Write a snapshot commit (no ref moves). No validation: the server checks input first."""
        doc = {
            "parents": [parent] if parent else [],
            "title": title, "message": message, "author": author, "date": time.time(),
            "files": {path: asdict(entry) for path, entry in sorted(files.items())},
        }
        sha = hashlib.sha1(json.dumps(doc, sort_keys=True).encode()).hexdigest()
        with self.lock:
            self._write_json(self._repo_dir(repo_id) / "commits" / f"{sha}.json", doc)
        return sha

    def history(self, repo_id: str, sha: str) -> list[Commit]:
        """First-parent history, newest first."""
        out = []
        current: str | None = sha
        while current:
            commit = self.commit(repo_id, current)
            out.append(commit)
            current = commit.parents[0] if commit.parents else None
        return out

    # -- test helpers: states only a broken or hostile server would produce --

    def raw_commit(self, repo_id: str, files: dict[str, bytes], branch: str = "main", title: str = "raw commit",
                   keep: bool = True, lfs: tuple[str, ...] = ("*.safetensors", "*.bin")) -> str:
        """Commit ``files`` straight to disk, skipping every check the API makes."""
        from fnmatch import fnmatch

        with self.lock:
            parent = self.refs(repo_id)["branches"].get(branch)
            tree = dict(self.commit(repo_id, parent).files) if (parent and keep) else {}
            for path, data in files.items():
                sha = self.put_blob(data)
                large = any(fnmatch(path.rsplit("/", 1)[-1], p) for p in lfs)
                tree[path] = FileEntry.large(sha, len(data)) if large else FileEntry.regular(data)
            sha = self.make_commit(repo_id, parent, tree, title, "", "test")
            self.set_ref(repo_id, "branches", branch, sha)
            return sha

    def damage_blob(self, sha256: str, content: bytes) -> None:
        """Replace a stored blob's bytes while every listing keeps the recorded size and hash."""
        self.blob_path(sha256).write_bytes(content)
