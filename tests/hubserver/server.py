"""A small Hugging Face Hub look-alike for tests: the HTTP API the real
``huggingface_hub`` client speaks, for model repos.

Covered: whoami, repo create/delete/settings, model info (per revision),
list models (search/author/filter tags derived from the model card), refs,
commits, tree, paths-info, branches, tags, validate-yaml, preupload,
the LFS batch API (basic transfer + verify), NDJSON commits (header, file,
lfsFile, deletedFile, deletedFolder; create_pr opens refs/pr/N; parentCommit
is enforced), and resolve (regular files answered directly with ETag = git
blob id; LFS files redirected to a CDN on another origin with X-Linked-Etag /
X-Linked-Size). Errors carry the Hub's X-Error-Code / X-Error-Message.
Lists are paginated with a ``Link: <…>; rel="next"`` header.

Not covered: datasets and spaces, Xet storage (clients must run with
HF_HUB_DISABLE_XET=1, which makes them use LFS as the Hub still accepts),
discussions beyond PR refs, gated repos.

Run: ``python -m tests.hubserver --root DIR [--config JSON]``; prints one JSON line
``{"url": …, "cdn": …}`` on stdout once it listens.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import sys
import threading
from datetime import datetime, timezone
from email.utils import formatdate
from fnmatch import fnmatch
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from .storage import FileEntry, RepoStore

LFS_THRESHOLD = 10 * 1024 * 1024   # the Hub stores files above 10 MB with LFS whatever their name
NAME_RE = re.compile(r"^(?!.*(--|\.\.))[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
REPO = r"(?P<repo>[^/]+/[^/]+)"


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None,
                 extra: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}
        self.extra = extra or {}  # more fields of the JSON error body


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def bad_path(path: str) -> str | None:
    """Why the Hub would refuse ``path`` as a file name in a repo, or None."""
    if not path or path.startswith("/") or "\\" in path:
        return "must be a relative POSIX path"
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return "must not contain empty, '.' or '..' segments"
    if parts[0] == ".git":
        return "must not be inside .git"
    return None


def read_card(data: bytes | None) -> dict:
    """YAML front matter of a README.md, as the Hub parses it into cardData."""
    if not data:
        return {}
    text = data.decode("utf-8", "replace")
    m = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.S)
    if not m:
        return {}
    import yaml

    try:
        doc = yaml.safe_load(m.group(1))
    except yaml.YAMLError:
        return {}
    return doc if isinstance(doc, dict) else {}


def card_problem(store: RepoStore, card: dict) -> str | None:
    """What the Hub's metadata check refuses: a base_model that names no model on the Hub."""
    bases = card.get("base_model") or []
    for base in bases if isinstance(bases, list) else [bases]:
        if not isinstance(base, str) or base.count("/") != 1 or not store.exists(base):
            return f'"base_model" with value "{base}" is not valid. Use a model id from https://hf.co/models.'
    return None


def derive_tags(files: dict[str, FileEntry], card: dict) -> tuple[list[str], str | None]:
    """Tags the Hub computes for a model from its files and card metadata."""
    tags: list[str] = []
    library = card.get("library_name") or ("peft" if "adapter_config.json" in files else None)
    if library:
        tags.append(library)
    if any(p.endswith(".safetensors") for p in files):
        tags.append("safetensors")
    extra = card.get("tags") or []
    tags.extend(str(t) for t in (extra if isinstance(extra, list) else [extra]))
    bases = card.get("base_model") or []
    bases = bases if isinstance(bases, list) else [bases]
    relation = card.get("base_model_relation") or ("adapter" if "adapter_config.json" in files else None)
    for base in bases:
        tags.append(f"base_model:{base}")
        if relation:
            tags.append(f"base_model:{relation}:{base}")
    if card.get("license"):
        tags.append(f"license:{card['license']}")
    return list(dict.fromkeys(tags)), library


class HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeHub

    # -- plumbing ----------------------------------------------------------

    def log_message(self, format, *args):  # noqa: A002 - keep stderr quiet; the request log is on disk
        pass

    def _dispatch(self, method: str) -> None:
        self._body: bytes | None = None
        self._body_consumed = False
        split = urlsplit(self.path)
        self.query = parse_qs(split.query, keep_blank_values=True)
        # /mirror/...: behave like olah, a self-hosted mirror that serves model info only at a named revision
        self.mirror = split.path.startswith("/mirror/")
        route_path = split.path[len("/mirror"):] if self.mirror else split.path
        status = 500
        try:
            for verbs, pattern, handler in self.server.routes:
                if method in verbs and (m := re.fullmatch(pattern, route_path)):
                    args = {k: unquote(v) if v is not None else None for k, v in m.groupdict().items()}
                    status = handler(self, **args) or 200
                    break
            else:
                raise ApiError(404, f"Sorry, we can't find the page you are looking for: {split.path}")
        except ApiError as err:
            status = err.status
            self._drain()
            headers = {"X-Error-Message": err.message, **err.headers}
            if err.code:
                headers["X-Error-Code"] = err.code
            self.send_json({"error": err.message, **err.extra}, status, headers)
        except Exception as exc:  # noqa: BLE001 - a bug in the fake server: say so loudly
            import traceback

            traceback.print_exc()
            self._drain()
            self.send_json({"error": f"fake hub crashed: {exc!r}"}, 500)
        self.server.log(method, self.path, status)

    do_GET = lambda self: self._dispatch("GET")        # noqa: E731
    do_HEAD = lambda self: self._dispatch("HEAD")      # noqa: E731
    do_POST = lambda self: self._dispatch("POST")      # noqa: E731
    do_PUT = lambda self: self._dispatch("PUT")        # noqa: E731
    do_DELETE = lambda self: self._dispatch("DELETE")  # noqa: E731

    def body_chunks(self):
        """The request body as it arrives; handles Content-Length and chunked encoding."""
        self._body_consumed = True
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                yield self.rfile.read(size)
                self.rfile.readline()
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk

    def body(self) -> bytes:
        if self._body is None:
            self._body = b"" if self._body_consumed else b"".join(self.body_chunks())
        return self._body

    def json_body(self) -> dict:
        try:
            doc = json.loads(self.body() or b"{}")
        except json.JSONDecodeError:
            raise ApiError(400, "Request body is not valid JSON") from None
        if not isinstance(doc, dict):
            raise ApiError(400, "Request body must be a JSON object")
        return doc

    def _drain(self) -> None:
        if not self._body_consumed:
            for _ in self.body_chunks():
                pass

    def send(self, status: int, body: bytes = b"", headers: dict | None = None, length: int | None = None) -> int:
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Length", str(len(body) if length is None else length))
        headers.setdefault("Date", formatdate(usegmt=True))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
        return status

    def send_json(self, doc, status: int = 200, headers: dict | None = None) -> int:
        return self.send(status, json.dumps(doc).encode(), {"Content-Type": "application/json", **(headers or {})})

    def send_page(self, items: list, page_size: int | None = None) -> int:
        """One page of ``items`` with a GitHub-style Link header to the next one."""
        size = page_size or self.server.page_size
        start = int(self.q("cursor") or 0)
        page = items[start:start + size]
        headers = {}
        if start + size < len(items):
            params = [(k, v) for k, vs in self.query.items() if k != "cursor" for v in vs] + [("cursor", start + size)]
            url = f"{self.server.base_url}{urlsplit(self.path).path}?{urlencode(params)}"
            headers["Link"] = f'<{url}>; rel="next"'
        return self.send_json(page, 200, headers)

    def q(self, key: str, default: str | None = None) -> str | None:
        values = self.query.get(key)
        return values[0] if values else default

    def flag(self, key: str) -> bool:
        return (self.q(key) or "").lower() in ("1", "true", "yes")

    # -- auth and lookup ---------------------------------------------------

    def user(self, required: bool = False) -> dict | None:
        auth = self.headers.get("Authorization", "")
        if not auth.lower().startswith("bearer "):
            if required:
                raise ApiError(401, "Invalid username or password.")
            return None
        user = self.server.users.get(auth.split(None, 1)[1].strip())
        if user is None:
            raise ApiError(401, "Invalid credentials in Authorization header")
        return user

    def can_write(self, user: dict | None, namespace: str) -> bool:
        return user is not None and (namespace == user["name"] or namespace in user.get("orgs", []))

    def repo(self, repo_id: str, write: bool = False) -> str:
        """Check the repo exists and is visible (writable) to the caller; hide private repos like the Hub."""
        user = self.user()
        store = self.server.store
        if not store.exists(repo_id) or (store.meta(repo_id)["private"] and
                                         not self.can_write(user, repo_id.split("/")[0])):
            raise ApiError(401 if user is None else 404, "Repository not found", "RepoNotFound")
        if write and not self.can_write(user, repo_id.split("/")[0]):
            if user is None:
                raise ApiError(401, "You must be authenticated to write to this repo")
            raise ApiError(403, f"You don't have the rights to write to {repo_id}")
        return repo_id

    def resolve(self, repo_id: str, revision: str) -> str:
        sha = self.server.store.resolve(repo_id, revision)
        if sha is None:
            raise ApiError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return sha

    # -- account and repos -------------------------------------------------

    def whoami(self):
        user = self.user(required=True)
        return self.send_json({
            "type": "user", "id": user["name"], "name": user["name"], "fullname": user["name"],
            "orgs": [{"type": "org", "name": org} for org in user.get("orgs", [])],
            "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}},
        })

    def create_repo(self):
        user = self.user(required=True)
        doc = self.json_body()
        if doc.get("type", "model") != "model":
            raise ApiError(400, "This fake Hub only hosts model repos")
        name, namespace = doc.get("name") or "", doc.get("organization") or user["name"]
        if not NAME_RE.match(name) or name.endswith(".git"):
            raise ApiError(400, f"Invalid repo name: {name!r}")
        if not self.can_write(user, namespace):
            raise ApiError(403, f"You don't have the rights to create a model under the namespace \"{namespace}\"")
        repo_id = f"{namespace}/{name}"
        url = f"{self.server.base_url}/{repo_id}"
        with self.server.store.lock:
            if self.server.store.exists(repo_id):
                raise ApiError(409, "You already created this model repo", extra={"url": url})
            private = doc.get("private")
            if "visibility" in doc:
                private = doc["visibility"] != "public"
            self.server.store.create_repo(repo_id, bool(private), user["name"])
        return self.send_json({"url": url, "name": repo_id, "id": repo_id})

    def delete_repo(self):
        user = self.user(required=True)
        doc = self.json_body()
        repo_id = f"{doc.get('organization') or user['name']}/{doc.get('name')}"
        self.server.store.delete_repo(self.repo(repo_id, write=True))
        return self.send_json({})

    def repo_settings(self, repo):
        self.repo(repo, write=True)
        doc = self.json_body()
        if "private" in doc:
            self.server.store.set_private(repo, bool(doc["private"]))
        if "visibility" in doc:
            self.server.store.set_private(repo, doc["visibility"] != "public")
        return self.send_json({"private": self.server.store.meta(repo)["private"]})

    def validate_yaml(self):
        doc = self.json_body()
        text = doc.get("content") or ""
        m = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, re.S)
        if m:
            import yaml

            try:
                meta = yaml.safe_load(m.group(1))
            except yaml.YAMLError as exc:
                return self.send_json({"errors": [{"message": f"Invalid YAML: {exc}"}], "warnings": []}, 400)
            if meta is not None and not isinstance(meta, dict):
                return self.send_json({"errors": [{"message": "YAML metadata must be a mapping"}], "warnings": []}, 400)
            if problem := card_problem(self.server.store, meta or {}):
                return self.send_json({"errors": [{"message": problem}], "warnings": []}, 400)
        return self.send_json({"errors": [], "warnings": []})

    # -- model info and search ---------------------------------------------

    def _model_doc(self, repo_id: str, sha: str, blobs: bool = False) -> dict:
        store = self.server.store
        commit = store.commit(repo_id, sha)
        meta = store.meta(repo_id)
        readme = commit.files.get("README.md")
        card = read_card(store.read_blob(readme.sha256) if readme else None)
        tags, library = derive_tags(commit.files, card)
        siblings = []
        for path, entry in sorted(commit.files.items()):
            sibling = {"rfilename": path}
            if blobs:
                sibling.update(size=entry.size, blobId=entry.oid)
                if entry.lfs:
                    sibling["lfs"] = {"sha256": entry.sha256, "size": entry.size, "pointerSize": 134}
            siblings.append(sibling)
        doc = {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24], "id": repo_id, "modelId": repo_id,
            "author": repo_id.split("/")[0], "sha": sha, "lastModified": iso(commit.date),
            "createdAt": iso(meta["created_at"]), "private": meta["private"], "disabled": False, "gated": False,
            "downloads": 0, "likes": 0, "tags": tags, "siblings": siblings,
            "usedStorage": sum(e.size for e in commit.files.values()),
        }
        if library:
            doc["library_name"] = library
        if card:
            doc["cardData"] = card
        return doc

    def model_info(self, repo, revision=None):
        if self.mirror and revision is None:
            raise ApiError(404, "Repository not found (this mirror serves /api/models/ID/revision/REV only)",
                           "RepoNotFound")
        self.repo(repo)
        sha = self.resolve(repo, revision or "main")
        doc = self._model_doc(repo, sha, blobs=self.flag("blobs"))
        expand = self.query.get("expand") or self.query.get("expand[]")
        if expand:
            doc = {k: v for k, v in doc.items() if k in {"_id", "id", *expand}}
        return self.send_json(doc)

    def list_models(self):
        user = self.user()
        store = self.server.store
        search = (self.q("search") or "").lower()
        author = self.q("author")
        wanted = set(self.query.get("filter", []))
        full = self.flag("full") or self.flag("cardData")
        found = []
        for repo_id in store.repo_ids():
            if store.meta(repo_id)["private"] and not self.can_write(user, repo_id.split("/")[0]):
                continue
            if author and repo_id.split("/")[0] != author:
                continue
            if search and search not in repo_id.lower():
                continue
            sha = store.refs(repo_id)["branches"].get("main")
            if sha is None:
                continue
            doc = self._model_doc(repo_id, sha)
            if not wanted <= set(doc["tags"]) | ({doc.get("library_name")} - {None}):
                continue
            keep = set(doc) if full else {"_id", "id", "modelId", "likes", "downloads", "private", "tags",
                                          "library_name", "createdAt", "pipeline_tag"}
            if not self.flag("cardData"):
                keep.discard("cardData")
            found.append({k: v for k, v in doc.items() if k in keep})
        sort = self.q("sort") or "id"
        key = {"lastModified": "lastModified", "createdAt": "createdAt", "downloads": "downloads",
               "likes": "likes"}.get(sort, "id")
        found.sort(key=lambda d: (d.get(key) or "", d["id"]), reverse=self.q("direction") == "-1")
        limit = int(self.q("limit") or 0)
        page = min(limit, self.server.page_size) if limit else None
        return self.send_page(found, page)

    # -- refs, commits, branches, tags ---------------------------------------

    def list_refs(self, repo):
        self.repo(repo)
        refs = self.server.store.refs(repo)
        doc = {
            "branches": [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": s} for n, s in sorted(refs["branches"].items())],
            "tags": [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": s} for n, s in sorted(refs["tags"].items())],
            "converts": [],
        }
        if self.flag("include_prs"):
            doc["pullRequests"] = [{"name": f"refs/pr/{n}", "ref": f"refs/pr/{n}", "targetCommit": s}
                                   for n, s in sorted(refs["prs"].items(), key=lambda kv: int(kv[0]))]
        return self.send_json(doc)

    def list_commits(self, repo, revision):
        self.repo(repo)
        sha = self.resolve(repo, revision)
        items = [{"id": c.sha, "title": c.title, "message": c.message, "date": iso(c.date),
                  "authors": [{"user": c.author, "avatar": ""}]} for c in self.server.store.history(repo, sha)]
        return self.send_page(items)

    def create_branch(self, repo, branch):
        user = self.user()
        self.repo(repo, write=True)
        doc = self.json_body()
        store = self.server.store
        with store.lock:
            if branch in store.refs(repo)["branches"]:
                raise ApiError(409, f"Reference already exists: refs/heads/{branch}")
            if bad_path(branch) or branch.startswith("refs/"):
                raise ApiError(400, f"Invalid branch name: {branch}")
            if doc.get("emptyBranch"):
                sha = store.make_commit(repo, None, {}, f"create empty branch {branch}", "", user["name"])
            else:
                sha = self.resolve(repo, doc.get("startingPoint") or "main")
            store.set_ref(repo, "branches", branch, sha)
        return self.send_json({})

    def delete_branch(self, repo, branch):
        self.repo(repo, write=True)
        if branch == "main":
            raise ApiError(403, "Cannot delete the default branch")
        if branch not in self.server.store.refs(repo)["branches"]:
            raise ApiError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
        self.server.store.set_ref(repo, "branches", branch, None)
        return self.send_json({})

    def create_tag(self, repo, revision):
        self.repo(repo, write=True)
        doc = self.json_body()
        tag = doc.get("tag") or ""
        store = self.server.store
        with store.lock:
            sha = self.resolve(repo, revision)
            if tag in store.refs(repo)["tags"]:
                raise ApiError(409, f"Tag {tag} already exists")
            if bad_path(tag) or tag.startswith("refs/"):
                raise ApiError(400, f"Invalid tag name: {tag!r}")
            store.set_ref(repo, "tags", tag, sha)
        return self.send_json({})

    def delete_tag(self, repo, tag):
        self.repo(repo, write=True)
        if tag not in self.server.store.refs(repo)["tags"]:
            raise ApiError(404, f"Invalid rev id: {tag}", "RevisionNotFound")
        self.server.store.set_ref(repo, "tags", tag, None)
        return self.send_json({})

    # -- tree ----------------------------------------------------------------

    def _entries(self, repo: str, sha: str, expand: bool) -> dict[str, dict]:
        """Every file and folder of a commit as the tree API shows it, by path."""
        store = self.server.store
        files = store.commit(repo, sha).files
        out: dict[str, dict] = {}
        for path, entry in files.items():
            doc = {"type": "file", "oid": entry.oid, "size": entry.size, "path": path}
            if entry.lfs:
                doc["lfs"] = {"oid": entry.sha256, "size": entry.size, "pointerSize": 134}
            out[path] = doc
            parts = path.split("/")
            for i in range(1, len(parts)):
                folder = "/".join(parts[:i])
                out.setdefault(folder, {"type": "directory", "size": 0, "path": folder, "_children": []})
                out[folder]["_children"].append(entry.oid)
        for doc in out.values():
            if doc["type"] == "directory":
                children = doc.pop("_children")
                doc["oid"] = hashlib.sha1("".join(sorted(children)).encode()).hexdigest()
        if expand:
            for path, doc in out.items():
                last = self._last_commit(repo, sha, path)
                doc["lastCommit"] = {"id": last.sha, "title": last.title, "date": iso(last.date)}
                if doc["type"] == "file":
                    doc["securityFileStatus"] = {"status": "safe", "avScan": {"virusFound": False},
                                                 "pickleImportScan": None}
        return out

    def _last_commit(self, repo: str, sha: str, path: str):
        history = self.server.store.history(repo, sha)

        def view(commit):
            return {p: e for p, e in commit.files.items() if p == path or p.startswith(path + "/")}

        for commit, parent in zip(history, history[1:] + [None]):
            if parent is None or view(commit) != view(parent):
                return commit
        return history[-1]

    def list_tree(self, repo, revision, path=None):
        self.repo(repo)
        sha = self.resolve(repo, revision)
        entries = self._entries(repo, sha, self.flag("expand"))
        folder = (path or "").strip("/")
        if folder and entries.get(folder, {}).get("type") != "directory":
            raise ApiError(404, f"Entry not found: {folder}", "EntryNotFound", {"X-Repo-Commit": sha})
        prefix = f"{folder}/" if folder else ""
        recursive = self.flag("recursive")
        items = [doc for p, doc in sorted(entries.items())
                 if p.startswith(prefix) and (recursive or "/" not in p[len(prefix):])]
        return self.send_page(items)

    def paths_info(self, repo, revision):
        self.repo(repo)
        sha = self.resolve(repo, revision)
        form = parse_qs(self.body().decode(), keep_blank_values=True)
        expand = (form.get("expand") or ["false"])[0].lower() in ("1", "true")
        entries = self._entries(repo, sha, expand)
        found = [entries[p.strip("/")] for p in form.get("paths", []) if p.strip("/") in entries]
        return self.send_json(found)

    # -- uploads ---------------------------------------------------------------

    def _lfs_patterns(self, repo: str, sha: str) -> list[str]:
        entry = self.server.store.commit(repo, sha).files.get(".gitattributes")
        if entry is None:
            return []
        text = self.server.store.read_blob(entry.sha256).decode("utf-8", "replace")
        return [line.split()[0] for line in text.splitlines() if "filter=lfs" in line and line.split()]

    def preupload(self, repo, revision):
        self.repo(repo, write=not self.flag("create_pr"))
        sha = self.resolve(repo, revision)
        files = self.server.store.commit(repo, sha).files
        patterns = self._lfs_patterns(repo, sha)
        out = []
        for item in self.json_body().get("files", []):
            path, size = item.get("path", ""), int(item.get("size", 0))
            sample = base64.b64decode(item.get("sample", ""))
            name = path.rsplit("/", 1)[-1]
            lfs = (size >= LFS_THRESHOLD or b"\0" in sample
                   or any(fnmatch(name, p) or fnmatch(path, p) for p in patterns))
            existing = files.get(path)
            oid = None if existing is None else (existing.sha256 if existing.lfs else existing.oid)
            out.append({"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
        return self.send_json({"files": out, "commitOid": sha})

    def lfs_batch(self, repo):
        doc = self.json_body()
        self.repo(repo, write=doc.get("operation") == "upload")
        base = self.server.base_url
        objects = []
        for obj in doc.get("objects", []):
            oid, size = str(obj.get("oid", "")), int(obj.get("size", 0))
            item = {"oid": oid, "size": size, "authenticated": True}
            if not re.fullmatch(r"[0-9a-f]{64}", oid):
                item["error"] = {"code": 422, "message": "oid must be a sha256"}
            elif doc.get("operation") == "download":
                if self.server.store.has_blob(oid, size):
                    item["actions"] = {"download": {"href": f"{self.server.cdn_url}/{oid}"}}
                else:
                    item["error"] = {"code": 404, "message": "Object does not exist"}
            elif not self.server.store.has_blob(oid, size):
                item["actions"] = {
                    "upload": {"href": f"{base}/_lfs/{oid}?size={size}", "header": {}},
                    "verify": {"href": f"{base}/{repo}.git/info/lfs/objects/verify", "header": {}},
                }
            objects.append(item)
        body = json.dumps({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}).encode()
        return self.send(200, body, {"Content-Type": "application/vnd.git-lfs+json"})

    def lfs_upload(self, oid):
        size = int(self.q("size") or -1)
        if not self.server.store.put_blob_stream(self.body_chunks(), oid, size):
            raise ApiError(400, "Uploaded content does not match its oid and size")
        return self.send(200)

    def lfs_verify(self, repo):
        self.repo(repo, write=True)
        doc = self.json_body()
        if not self.server.store.has_blob(str(doc.get("oid")), int(doc.get("size", -1))):
            raise ApiError(404, "Object not found or of another size")
        return self.send_json({})

    def commit(self, repo, revision):
        user = self.user(required=True)
        create_pr = self.flag("create_pr")
        self.repo(repo, write=not create_pr)
        store = self.server.store
        lines = [json.loads(line) for line in self.body().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise ApiError(400, "The first line of a commit must be its header")
        header = lines[0]["value"]
        with store.lock:
            head = self.resolve(repo, revision)
            target = store.branch_of(repo, revision)
            if target is None and not create_pr:
                raise ApiError(400, f"Cannot commit to {revision}: not a branch")
            parent = header.get("parentCommit")
            if parent and parent != head:
                raise ApiError(412, "A commit has happened since. Please refresh and try again.")
            tree = dict(store.commit(repo, head).files)
            for line in lines[1:]:
                key, value = line.get("key"), line.get("value") or {}
                path = value.get("path", "")
                if key in ("file", "lfsFile", "deletedFile") and (why := bad_path(path)):
                    raise ApiError(400, f"Invalid path {path!r}: {why}")
                if key == "file":
                    if value.get("encoding") != "base64":
                        raise ApiError(400, "Only base64 encoded files are supported")
                    data = base64.b64decode(value.get("content", ""))
                    store.put_blob(data)
                    tree[path] = FileEntry.regular(data)
                elif key == "lfsFile":
                    oid = value.get("oid", "")
                    blob = store.blob_path(oid)
                    if not re.fullmatch(r"[0-9a-f]{64}", oid) or not blob.is_file():
                        raise ApiError(422, f"LFS file {path} ({oid}) was not uploaded")
                    size = blob.stat().st_size
                    if value.get("size") is not None and int(value["size"]) != size:
                        raise ApiError(422, f"LFS file {path}: size {value['size']} differs from the upload")
                    tree[path] = FileEntry.large(oid, size)
                elif key == "deletedFile":
                    if tree.pop(path, None) is None:
                        raise ApiError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                elif key == "deletedFolder":
                    prefix = path.rstrip("/") + "/"
                    gone = [p for p in tree if p.startswith(prefix)]
                    if not gone:
                        raise ApiError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                    for p in gone:
                        del tree[p]
                else:
                    raise ApiError(400, f"Unknown commit operation: {key}")
            readme = tree.get("README.md")
            if readme and readme != store.commit(repo, head).files.get("README.md"):
                if problem := card_problem(store, read_card(store.read_blob(readme.sha256))):
                    raise ApiError(400, problem)
            sha = store.make_commit(repo, head, tree, header.get("summary") or "Upload",
                                    header.get("description") or "", user["name"])
            pr_url = None
            if create_pr and (target is None or target[0] != "prs"):
                number = store.open_pr(repo, sha)
                pr_url = f"{self.server.base_url}/{repo}/discussions/{number}"
            else:
                store.set_ref(repo, target[0], target[1], sha)
                if target[0] == "prs":
                    pr_url = f"{self.server.base_url}/{repo}/discussions/{target[1]}"
        return self.send_json({"success": True, "commitOid": sha, "commitUrl": f"{self.server.base_url}/{repo}/commit/{sha}",
                               "hookOutput": "", "pullRequestUrl": pr_url})

    # -- downloads -------------------------------------------------------------

    def resolve_file(self, repo, revision, path):
        self.repo(repo)
        sha = self.resolve(repo, revision)
        entry = self.server.store.commit(repo, sha).files.get(path)
        if entry is None:
            raise ApiError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": sha})
        headers = {"X-Repo-Commit": sha, "Accept-Ranges": "bytes"}
        if entry.lfs:
            location = f"{self.server.cdn_url}/{entry.sha256}?filename={quote(path.rsplit('/', 1)[-1])}"
            headers.update({"Location": location, "ETag": f'"{entry.oid}"', "X-Linked-Etag": f'"{entry.sha256}"',
                            "X-Linked-Size": str(entry.size)})
            return self.send(302, b"", headers)
        headers["ETag"] = f'"{entry.oid}"'
        headers["Content-Type"] = "text/plain; charset=utf-8" if path.endswith((".md", ".json", ".txt")) \
            else "application/octet-stream"
        return send_blob(self, self.server.store.blob_path(entry.sha256), headers)


def send_blob(handler: BaseHTTPRequestHandler, path: Path, headers: dict) -> int:
    """Serve the bytes actually stored (a damaged blob is served as it is), with Range support."""
    data = path.read_bytes()
    status = 200
    rng = handler.headers.get("Range")
    if rng and (m := re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())):
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else len(data) - 1
        if start >= len(data):
            return handler.send(416, b"", {**headers, "Content-Range": f"bytes */{len(data)}"})
        headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        data, status = data[start:end + 1], 206
    return handler.send(status, data, headers)


class CdnHandler(HubHandler):
    """Serves LFS blobs by sha256 from another origin, like the Hub's CDN."""

    def _dispatch(self, method: str) -> None:
        self._body, self._body_consumed = None, False
        split = urlsplit(self.path)
        sha = split.path.strip("/")
        blob = self.server.store.blob_path(sha)
        if method not in ("GET", "HEAD") or not re.fullmatch(r"[0-9a-f]{64}", sha) or not blob.is_file():
            status = self.send(404, b"NoSuchKey")
        else:
            name = (parse_qs(split.query).get("filename") or [sha])[0]
            status = send_blob(self, blob, {"ETag": f'"{sha}"', "Content-Type": "application/octet-stream",
                                            "Content-Disposition": f'attachment; filename="{name}"'})
        self.server.log(method, "cdn:" + self.path, status)


ROUTES = [
    (("GET",), r"/api/whoami-v2", HubHandler.whoami),
    (("POST",), r"/api/repos/create", HubHandler.create_repo),
    (("DELETE",), r"/api/repos/delete", HubHandler.delete_repo),
    (("PUT",), rf"/api/models/{REPO}/settings", HubHandler.repo_settings),
    (("POST",), r"/api/validate-yaml", HubHandler.validate_yaml),
    (("GET",), r"/api/models", HubHandler.list_models),
    (("GET",), rf"/api/models/{REPO}", HubHandler.model_info),
    (("GET",), rf"/api/models/{REPO}/revision/(?P<revision>[^/]+)", HubHandler.model_info),
    (("GET",), rf"/api/models/{REPO}/refs", HubHandler.list_refs),
    (("GET",), rf"/api/models/{REPO}/commits/(?P<revision>[^/]+)", HubHandler.list_commits),
    (("GET",), rf"/api/models/{REPO}/tree/(?P<revision>[^/]+)(?:/(?P<path>.*))?", HubHandler.list_tree),
    (("POST",), rf"/api/models/{REPO}/paths-info/(?P<revision>[^/]+)", HubHandler.paths_info),
    (("POST",), rf"/api/models/{REPO}/branch/(?P<branch>[^/]+)", HubHandler.create_branch),
    (("DELETE",), rf"/api/models/{REPO}/branch/(?P<branch>[^/]+)", HubHandler.delete_branch),
    (("POST",), rf"/api/models/{REPO}/tag/(?P<revision>[^/]+)", HubHandler.create_tag),
    (("DELETE",), rf"/api/models/{REPO}/tag/(?P<tag>[^/]+)", HubHandler.delete_tag),
    (("POST",), rf"/api/models/{REPO}/preupload/(?P<revision>[^/]+)", HubHandler.preupload),
    (("POST",), rf"/api/models/{REPO}/commit/(?P<revision>[^/]+)", HubHandler.commit),
    (("POST",), rf"/{REPO}\.git/info/lfs/objects/batch", HubHandler.lfs_batch),
    (("POST",), rf"/{REPO}\.git/info/lfs/objects/verify", HubHandler.lfs_verify),
    (("PUT",), r"/_lfs/(?P<oid>[0-9a-f]{64})", HubHandler.lfs_upload),
    (("GET", "HEAD"), rf"/{REPO}/resolve/(?P<revision>[^/]+)/(?P<path>.+)", HubHandler.resolve_file),
]


class FakeHub(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, store: RepoStore, users: dict, page_size: int, handler=HubHandler, port: int = 0):
        super().__init__(("127.0.0.1", port), handler)
        self.store, self.users, self.page_size = store, users, page_size
        self.routes = ROUTES
        self.base_url = f"http://127.0.0.1:{self.server_address[1]}"
        self.cdn_url = ""
        self._log_lock = threading.Lock()

    def log(self, method: str, path: str, status: int) -> None:
        with self._log_lock, open(self.store.root / "requests.log", "a") as out:
            out.write(f"{method} {path} {status}\n")


def serve(root: str, config: dict) -> None:
    store = RepoStore(root)
    users = config.get("users", {})
    page_size = int(config.get("page_size", 100))
    hub = FakeHub(store, users, page_size)
    cdn = FakeHub(store, users, page_size, handler=CdnHandler)   # another port: another origin
    hub.cdn_url = cdn.cdn_url = cdn.base_url
    threading.Thread(target=cdn.serve_forever, daemon=True).start()
    print(json.dumps({"url": hub.base_url, "cdn": cdn.base_url}), flush=True)
    try:
        hub.serve_forever()
    except KeyboardInterrupt:
        pass


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="folder holding the repos")
    parser.add_argument("--config", default="{}", help='JSON: {"users": {token: {"name", "orgs"}}, "page_size": N}')
    args = parser.parse_args(argv)
    serve(args.root, json.loads(args.config))


if __name__ == "__main__":
    sys.exit(main())
