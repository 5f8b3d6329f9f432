"""The read-only Hub HTTP API over the registry, as a Starlette (ASGI) app.

Served (what huggingface_hub uses to read model repos, see docs/serve.md): model info
with and without revision (``expand``, ``blobs``), list models (``search``, ``author``,
``filter``, ``base_model``), refs, tree, paths-info, resolve (GET and HEAD, with
X-Repo-Commit, ETag, Content-Length and byte ranges) and /health. Errors carry the Hub's
status codes, X-Error-Code and X-Error-Message so clients raise their usual exceptions.
Everything else is 404; no method but GET, HEAD (and POST for paths-info) is routed.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from hub.errors import HubError, NotFound
from hub.serving.repos import EntryNotFound, RegistryRepos

CHUNK = 1 << 20                      # bytes per read while streaming: memory stays flat
MAX_FORM = 64 * 1024                 # paths-info bodies are a few file names
LOG = logging.getLogger("hub.serve")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_TEXT = (".json", ".md", ".txt")


def _error(status: int, message: str, code: str | None = None, headers: dict | None = None) -> Response:
    head = {"X-Error-Message": message[:300], **(headers or {})}
    if code:
        head["X-Error-Code"] = code
    return JSONResponse({"error": message}, status, head)


def _hub_error(exc: HubError) -> Response:
    if isinstance(exc, NotFound):
        return _error(404, exc.what, getattr(exc, "hub_code", None))
    # a linked file that changed since registration, a missing store blob: never served, and
    # a 4xx (not 5xx) so that clients do not retry what will not change
    return _error(409, f"{exc.what}; the registry refuses to serve it", None)


def endpoint(fn):
    """Hub errors -> the Hub's error replies (sync handlers run in Starlette's thread pool)."""

    def wrapped(request: Request):
        try:
            return fn(request)
        except HubError as exc:
            return _hub_error(exc)

    wrapped.__name__ = fn.__name__
    return wrapped


class ServeApp:
    """Handlers over one RegistryRepos; ``app`` is the ASGI application (auth and access log
    wrapped around it)."""

    def __init__(self, repos: RegistryRepos, tokens: frozenset[str] = frozenset()):
        self.repos = repos
        self.tokens = tokens
        routes = [
            Route("/health", self.health, methods=["GET"]),
            Route("/api/models", endpoint(self.list_models), methods=["GET"]),
            Route("/api/models/{ns}/{name}", endpoint(self.model_info), methods=["GET"]),
            Route("/api/models/{ns}/{name}/revision/{revision}", endpoint(self.model_info), methods=["GET"]),
            Route("/api/models/{ns}/{name}/refs", endpoint(self.refs), methods=["GET"]),
            Route("/api/models/{ns}/{name}/tree/{revision}", endpoint(self.tree), methods=["GET"]),
            Route("/api/models/{ns}/{name}/tree/{revision}/{path:path}", endpoint(self.tree), methods=["GET"]),
            Route("/api/models/{ns}/{name}/paths-info/{revision}", self.paths_info, methods=["POST"]),
            Route("/{ns}/{name}/resolve/{revision}/{path:path}", endpoint(self.resolve), methods=["GET", "HEAD"]),
        ]
        inner = Starlette(routes=routes, exception_handlers={404: self._not_found, 405: self._not_found})
        self.app = AccessLog(Auth(inner, tokens))

    # -- handlers -----------------------------------------------------------------------------

    def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @staticmethod
    async def _not_found(request: Request, exc) -> Response:
        return _error(404, "Sorry, we can't find the page you are looking for.")

    @staticmethod
    def _repo(request: Request) -> str:
        return f"{request.path_params['ns']}/{request.path_params['name']}"

    def model_info(self, request: Request) -> Response:
        commit = self.repos.commit(self._repo(request), request.path_params.get("revision"))
        blobs = request.query_params.get("blobs", "").lower() in ("1", "true")
        doc = self.repos.model_doc(commit, blobs=blobs)
        expand = request.query_params.getlist("expand") or request.query_params.getlist("expand[]")
        if expand:
            doc = {k: v for k, v in doc.items() if k in {"_id", "id", *expand}}
        return JSONResponse(doc)

    def list_models(self, request: Request) -> Response:
        from hub.listing.filters import ListFilter

        params = request.query_params
        search = (params.get("search") or "").lower()
        author = params.get("author")
        wanted = set(params.getlist("filter"))
        bases = set(params.getlist("base_model"))
        limit = _int(params.get("limit"))
        found = []
        for rec in self.repos.hub.list(ListFilter(), full=False):
            repo_id = self.repos.repo_id(rec.name)
            if (search and search not in repo_id.lower()) or (author and repo_id.split("/")[0] != author):
                continue
            try:
                commit = self.repos.commit(repo_id, "main")
            except NotFound:      # --main ALIAS: names without that alias have no main
                continue
            doc = self.repos.model_doc(commit)
            declared = {rec.base_model, rec.base} - {None}
            if not wanted <= set(doc["tags"]) | {"peft"} or (bases and not bases & declared):
                continue
            found.append({k: doc[k] for k in ("_id", "id", "modelId", "author", "sha", "lastModified", "createdAt",
                                             "private", "downloads", "likes", "tags", "library_name")})
            if limit and len(found) >= limit:
                break
        return JSONResponse(found)

    def refs(self, request: Request) -> Response:
        refs = self.repos.refs(self._repo(request))
        return JSONResponse({
            "branches": [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": s} for n, s in refs["branches"].items()],
            "tags": [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": s} for n, s in refs["tags"].items()],
            "converts": [],
        })

    def _entries(self, commit, expand: bool) -> list[dict]:
        out = []
        for f in self.repos.files(commit):
            doc = f.tree_entry()
            if expand:
                doc["lastCommit"] = {"id": commit.sha, "title": f"{commit.name} version {commit.version}",
                                     "date": self.repos.model_doc(commit)["lastModified"]}
            out.append(doc)
        return out

    def tree(self, request: Request) -> Response:
        commit = self.repos.commit(self._repo(request), request.path_params["revision"])
        folder = request.path_params.get("path", "").strip("/")
        if folder:   # a version's files all sit at the repo root: no folder exists
            raise EntryNotFound(f"Entry not found: {folder[:200]!r}", commit.repo_id, "list the root")
        expand = request.query_params.get("expand", "").lower() in ("1", "true")
        return JSONResponse(self._entries(commit, expand), headers={"X-Repo-Commit": commit.sha})

    async def _form(self, request: Request) -> tuple[list[str], bool]:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM:
                raise _BadRequest("request body too large")
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                doc = json.loads(body or b"{}")
            except ValueError:
                raise _BadRequest("request body is not JSON") from None
            paths, expand = doc.get("paths") or [], bool(doc.get("expand"))
        else:
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            paths, expand = form.get("paths", []), (form.get("expand") or ["false"])[0].lower() in ("1", "true")
        if isinstance(paths, str):
            paths = [paths]
        return [p for p in paths if isinstance(p, str)], expand

    async def paths_info(self, request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        try:
            paths, expand = await self._form(request)
        except _BadRequest as exc:
            return _error(400, str(exc))

        def answer():
            commit = self.repos.commit(self._repo(request), request.path_params["revision"])
            wanted = {p.strip("/") for p in paths}
            return JSONResponse([e for e in self._entries(commit, expand) if e["path"] in wanted],
                                headers={"X-Repo-Commit": commit.sha})

        return await run_in_threadpool(endpoint(lambda _: answer()), request)

    def resolve(self, request: Request) -> Response:
        commit = self.repos.commit(self._repo(request), request.path_params["revision"])
        try:
            served = self.repos.file(commit, request.path_params["path"])
        except EntryNotFound as exc:
            return _error(404, exc.what, "EntryNotFound", {"X-Repo-Commit": commit.sha})
        headers = {"X-Repo-Commit": commit.sha, "ETag": f'"{served.etag}"', "Accept-Ranges": "bytes",
                   "Content-Type": "text/plain; charset=utf-8" if served.path.endswith(_TEXT)
                   else "application/octet-stream"}
        if served.lfs:
            headers.update({"X-Linked-Etag": f'"{served.sha256}"', "X-Linked-Size": str(served.size)})
        size = served.size
        start, end, status = 0, size - 1, 200
        wanted = request.headers.get("range")
        if wanted:
            span = _byte_range(wanted, size)
            if span is None:
                return Response(b"", 416, {**headers, "Content-Range": f"bytes */{size}"})
            start, end = span
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = max(0, end - start + 1)
        headers["Content-Length"] = str(length)
        fh = self.repos.open(commit, served.path)     # checked before any byte is sent
        if request.method == "HEAD":
            fh.close()
            return Response(b"", status, headers)
        return StreamingResponse(_stream(fh, start, length), status, headers)


class _BadRequest(Exception):
    pass


def _int(text: str | None) -> int | None:
    try:
        return max(0, int(text)) if text else None
    except ValueError:
        return None


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) of a single ``bytes=`` range (RFC 9110), or None when unsatisfiable."""
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if not m.group(1):                       # bytes=-N: the last N bytes
        n = int(m.group(2))
        return (max(0, size - n), size - 1) if n and size else None
    start = int(m.group(1))
    end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    return (start, end) if start < size and start <= end else None


def _stream(fh, start: int, length: int):
    try:
        fh.seek(start)
        left = length
        while left > 0:
            chunk = fh.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk
    finally:
        fh.close()


class Auth:
    """With tokens, every route but /health needs ``Authorization: Bearer TOKEN`` (401
    otherwise, as the Hub answers for repos the caller may not see)."""

    def __init__(self, app, tokens: frozenset[str]):
        self.app, self.tokens = app, tokens

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.tokens or scope["path"] == "/health":
            return await self.app(scope, receive, send)
        given = ""
        for key, value in scope.get("headers", ()):
            if key == b"authorization":
                given = value.decode("latin-1")
        scheme, _, token = given.partition(" ")
        if scheme.lower() == "bearer" and any(hmac.compare_digest(token.strip().encode(), t.encode())
                                              for t in self.tokens):
            return await self.app(scope, receive, send)
        response = _error(401, "Invalid credentials in Authorization header" if given
                          else "Repository not found: this registry needs a token (HF_TOKEN)",
                          None if given else "RepoNotFound")
        await response(scope, receive, send)


class AccessLog:
    """One line per request: client, method, path, status, bytes sent, range, milliseconds."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        began = time.perf_counter()
        state = {"status": 0, "bytes": 0}

        async def counting(message):
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
            elif message["type"] == "http.response.body":
                state["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting)
        finally:
            rng = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"range"), "")
            client = (scope.get("client") or ("-",))[0]
            path = scope.get("path", "").encode("unicode_escape").decode()[:300]
            LOG.info('%s "%s %s" %s %dB%s %.1fms', client, scope["method"], path, state["status"] or 499,
                     state["bytes"], f" range={rng[:40]}" if rng else "", (time.perf_counter() - began) * 1000)


__all__ = ["ServeApp"]
