"""The one door to the Hugging Face Hub: endpoint, token, offline mode, fast failure
and the translation of huggingface_hub errors into hub errors.

Endpoint and token are read when a Remote is made (HF_ENDPOINT, HF_TOKEN or the
user's saved `hf auth login`), not when huggingface_hub was imported, and passed
explicitly to every call. Before any traffic the endpoint's TCP port is probed
with a short deadline: an unreachable endpoint fails in seconds with one line,
instead of the client's ~20 s of retries.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from hub.errors import HubError, IntegrityError, NotFound, RemoteError, UsageError
from hub.redact import without_userinfo
from hub.sync import http_bounds

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT_S = float(os.environ.get("HUB_PROBE_TIMEOUT", "4"))
_TRUE = {"1", "on", "yes", "true"}


def offline_requested() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) as set now."""
    return any(os.environ.get(k, "").strip().lower() in _TRUE for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def endpoint_from_env() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def _probe_target(endpoint: str) -> tuple[str, int, str]:
    """(host, port, label) to connect to: the endpoint, or the proxy that would carry its traffic."""
    import urllib.request

    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"HF_ENDPOINT is not an http(s) URL: {endpoint!r}", None,
                         "set it like https://huggingface.co or unset it")
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname):
        p = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if p.hostname:
            return p.hostname, p.port or (443 if p.scheme == "https" else 80), f"{endpoint} (via proxy {p.hostname})"
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), endpoint


def probe(endpoint: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Raise RemoteError unless a TCP connection to the endpoint (or its proxy) opens within ``timeout``.

    Runs in a daemon thread because name resolution ignores socket timeouts.
    """
    host, port, label = _probe_target(endpoint)
    outcome: dict = {}

    def connect():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome["ok"] = True
        except OSError as exc:
            outcome["error"] = exc.strerror or str(exc) or type(exc).__name__

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome.get("ok"):
        reason = outcome.get("error") or f"no answer within {timeout:g} s"
        raise RemoteError(f"cannot reach {label}: {reason}", None,
                          "check the network or HF_ENDPOINT; with HF_HUB_OFFLINE=1 hub works on what is registered")


@dataclass
class Remote:
    """A connection to one Hub endpoint. Construct with ``Remote.from_env()``."""

    endpoint: str
    token: str | None = None      # None: huggingface_hub's own lookup (HF_TOKEN, then the saved login)
    _api: object = field(default=None, repr=False)
    _probed: bool = field(default=False, repr=False)

    @classmethod
    def from_env(cls, check: bool = True) -> Remote:
        if offline_requested():
            raise RemoteError("HF_HUB_OFFLINE is set, so hub will not contact the Hub", None,
                              "unset HF_HUB_OFFLINE to pull, push or search")
        remote = cls(endpoint_from_env(), os.environ.get("HF_TOKEN") or None)
        log.debug("Hub endpoint %s, credentials from %s", remote.public,
                  "HF_TOKEN" if remote.token else "huggingface_hub's saved login, if any")
        if check:
            remote.ensure_reachable()
        return remote

    def ensure_reachable(self) -> None:
        if not self._probed:
            probe(self.endpoint)
            self._probed = True

    @property
    def public(self) -> str:
        """The endpoint as stored and printed: without ``user:token@`` (HF_ENDPOINT may carry one)."""
        return without_userinfo(self.endpoint)

    @property
    def api(self):
        if self._api is None:
            http_bounds.install()
            from huggingface_hub import HfApi, constants

            # env vars were frozen into constants at import; follow the environment as it is now
            constants.HF_HUB_OFFLINE = False
            self._api = HfApi(endpoint=self.endpoint, token=self.token, library_name="hub")
        return self._api

    @contextmanager
    def errors(self, repo_id: str | None = None, revision: str | None = None, path: str | None = None,
               seconds: float | None = None):
        """One remote operation: its HTTP requests run under one deadline and request count
        (hub.sync.http_bounds; ``seconds`` overrides the deadline), and huggingface_hub / HTTP
        errors raised inside become one-line hub errors."""
        http_bounds.install()
        try:
            with http_bounds.budget(f"{self.public}/{repo_id}" if repo_id else self.public, seconds):
                yield
        except HubError:
            raise
        except Exception as exc:  # noqa: BLE001 - translated or re-raised below
            translated = translate(exc, self.public, repo_id, revision, path)
            log.debug("%s %s %s failed: %s: %s", self.public, repo_id, revision or "", type(exc).__name__, exc)
            if translated is None:
                raise
            raise translated from exc


def translate(exc: BaseException, endpoint: str, repo_id: str | None, revision: str | None,
              path: str | None) -> HubError | None:
    import httpx2
    from huggingface_hub import errors as hf

    where = f"{endpoint}/{repo_id}" if repo_id else endpoint
    rev = revision or "main"
    if isinstance(exc, hf.GatedRepoError):
        return RemoteError(f"{repo_id} is gated", where, "accept its terms on the Hub with the account of HF_TOKEN")
    if isinstance(exc, hf.RepositoryNotFoundError):
        return NotFound(f"no model repo {repo_id!r} on the Hub", where,
                        "check the id; a private repo needs HF_TOKEN (or `hf auth login`) with access")
    if isinstance(exc, hf.RevisionNotFoundError):
        return NotFound(f"revision {rev!r} not found in {repo_id}", where,
                        "use an existing branch, tag or full commit id")
    if isinstance(exc, hf.EntryNotFoundError) and not isinstance(exc, hf.LocalEntryNotFoundError):
        return NotFound(f"{path or 'file'} not found in {repo_id}@{rev}", where, "check the file or --subfolder")
    if isinstance(exc, hf.OfflineModeIsEnabled):
        return RemoteError("huggingface_hub is in offline mode", where, "unset HF_HUB_OFFLINE")
    if isinstance(exc, hf.HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        message = (exc.server_message or "").strip() or str(exc).strip().splitlines()[0]
        message = " ".join(message.split())[:300]
        if status in (401, 403):
            return RemoteError(f"the Hub refused access (HTTP {status}): {message}", where,
                               "set HF_TOKEN (or `hf auth login`) to a token with write access to this namespace")
        if status == 412:
            return RemoteError("the branch moved while pushing", where, "run the push again")
        return RemoteError(f"the Hub answered HTTP {status}: {message}", where, "retry later or check the request")
    if isinstance(exc, ValueError) and str(exc).startswith("Invalid metadata in README.md"):
        detail = " ".join(str(exc).split("\n", 1)[-1].lstrip("- ").split())
        return RemoteError(f"the Hub refused the model card: {detail}", where, "fix the metadata (e.g. --base-model)")
    if isinstance(exc, hf.HFValidationError):
        return UsageError(" ".join(str(exc).split()), where, "check the repo id and revision")
    if isinstance(exc, http_bounds.BoundExceeded):
        return RemoteError(f"the Hub did not answer in bounds: {exc}", where,
                           "check HF_ENDPOINT and retry later (HF_HUB_DOWNLOAD_TIMEOUT, HUB_REMOTE_DEADLINE)")
    if isinstance(exc, httpx2.TimeoutException):
        return RemoteError(f"the Hub did not answer in time ({type(exc).__name__})", where,
                           "check the network and retry (HF_HUB_ETAG_TIMEOUT, HF_HUB_DOWNLOAD_TIMEOUT)")
    if isinstance(exc, (httpx2.ConnectError, httpx2.RemoteProtocolError, hf.LocalEntryNotFoundError)):
        return RemoteError(f"connection to the Hub failed: {_short(exc)}", where, "check the network and retry")
    if isinstance(exc, OSError) and "Consistency check failed" in str(exc):
        return IntegrityError(f"download of {path or 'a file'} is truncated or longer than advertised", where,
                              "the remote file is damaged or the transfer broke; nothing was registered, retry later")
    if isinstance(exc, (httpx2.HTTPError, httpx2.InvalidURL)):   # file:// redirects, bad encodings, loops
        return RemoteError(f"the Hub's reply could not be used: {type(exc).__name__}: {_short(exc)}", where,
                           "check HF_ENDPOINT; it does not behave like a Hub")
    if isinstance(exc, _MALFORMED) and _raised_in_client(exc):
        return RemoteError(f"the Hub sent a malformed reply ({type(exc).__name__}: {_short(exc)})", where,
                           "check HF_ENDPOINT; it does not behave like a Hub")
    return None


# what parsing a reply of the wrong shape raises inside huggingface_hub (JSON that is not
# JSON, a list where an object belongs, a missing field)
_MALFORMED = (ValueError, TypeError, KeyError, AttributeError, IndexError, UnicodeError)
_CLIENT_PACKAGES = ("huggingface_hub", "httpx", "httpcore", "json", "hub/sync/")


def _raised_in_client(exc: BaseException) -> bool:
    """Whether ``exc`` was raised while the client or hub.sync read a reply, not by a bug elsewhere."""
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    return last is not None and any(f"/{pkg}" in last.replace(os.sep, "/") for pkg in _CLIENT_PACKAGES)


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]
