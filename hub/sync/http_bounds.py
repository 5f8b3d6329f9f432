"""Bounds on every HTTP exchange huggingface_hub makes for hub.

A Hub endpoint is a server hub does not control. It may accept a connection and
never answer, trickle one byte at a time, page forever, or answer an API call with
gigabytes. huggingface_hub's shared client has no timeout by default and some calls
(``model_info``) pass ``timeout=None`` explicitly, which disables even a client
default. hub installs its own client class:

- every request gets a connect and a read timeout, whatever the caller passed:
  ``HF_HUB_ETAG_TIMEOUT`` (default 10 s) to connect, ``HF_HUB_DOWNLOAD_TIMEOUT``
  (default 30 s) between two reads;
- every operation (one ``Remote.errors()`` block: a listing, a download, a commit)
  runs under a ``Budget``: an overall deadline, checked before each request and
  between body chunks, and a request count that stops endless paging;
- API replies (``/api/``) are bounded in size; file downloads are bounded by their
  deadline, which grows with the file's size.

An exceeded bound raises ``BoundExceeded``; hub.sync.remote turns it into one line.
"""

from __future__ import annotations

import contextvars
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

DEFAULT_CONNECT_S = 10.0
DEFAULT_READ_S = 30.0
DEFAULT_DEADLINE_S = 120.0                # one operation (a listing with its pages, a commit)
MIN_DOWNLOAD_RATE = 256 * 1024            # bytes/s a download may fall to before its deadline passes
MAX_REQUESTS = 2_000                      # requests per operation: 2,000 pages of a listing
MAX_API_REPLY_BYTES = 64 * 1024 * 1024    # one JSON reply


class BoundExceeded(Exception):
    """A remote operation ran past its deadline, request count or reply size."""


def _env_seconds(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


def connect_timeout() -> float:
    return _env_seconds("HF_HUB_ETAG_TIMEOUT", DEFAULT_CONNECT_S)


def read_timeout() -> float:
    return _env_seconds("HF_HUB_DOWNLOAD_TIMEOUT", DEFAULT_READ_S)


def operation_deadline() -> float:
    return _env_seconds("HUB_REMOTE_DEADLINE", DEFAULT_DEADLINE_S)


@dataclass
class Budget:
    what: str
    seconds: float
    deadline: float
    max_requests: int
    requests: int = 0

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise BoundExceeded(f"{self.what} got no complete answer within {self.seconds:g} s")

    def count_request(self) -> None:
        self.check()
        self.requests += 1
        if self.requests > self.max_requests:
            raise BoundExceeded(f"{self.what} needed more than {self.max_requests} requests (endless paging?)")


_BUDGET: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("hub_remote_budget", default=None)


@contextmanager
def budget(what: str, seconds: float | None = None, max_requests: int = MAX_REQUESTS):
    """Run the HTTP requests made inside under one deadline and request count."""
    seconds = seconds or operation_deadline()
    token = _BUDGET.set(Budget(what, seconds, time.monotonic() + seconds, max_requests))
    try:
        yield
    finally:
        _BUDGET.reset(token)


def download_seconds(size: int) -> float:
    """Deadline for downloading ``size`` bytes: the operation deadline plus time at a slow rate."""
    return operation_deadline() + size / MIN_DOWNLOAD_RATE


_installed = False
_lock = threading.Lock()


def install() -> None:
    """Make huggingface_hub's shared client a bounded one (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        import httpx2
        from huggingface_hub.utils import _http

        class _BoundedStream(httpx2.SyncByteStream):
            def __init__(self, inner, budget_: Budget | None, limit: int | None):
                self.inner, self.budget, self.limit, self.seen = inner, budget_, limit, 0

            def __iter__(self):
                for chunk in self.inner:
                    self.seen += len(chunk)
                    if self.limit is not None and self.seen > self.limit:
                        raise BoundExceeded(f"the reply is larger than {self.limit // (1 << 20)} MB")
                    if self.budget is not None:
                        self.budget.check()
                    yield chunk

            def close(self):
                self.inner.close()

        class BoundedClient(httpx2.Client):
            def build_request(self, *args, **kwargs):
                request = super().build_request(*args, **kwargs)
                request.extensions = {**request.extensions, "timeout": _bounded(request.extensions.get("timeout"))}
                return request

            def _send_single_request(self, request):
                current = _BUDGET.get()
                if current is not None:
                    current.count_request()
                response = super()._send_single_request(request)
                limit = MAX_API_REPLY_BYTES if "/api/" in request.url.path else None
                response.stream = _BoundedStream(response.stream, current, limit)
                return response

        def factory():
            return BoundedClient(event_hooks={"request": [_http.hf_request_event_hook]}, follow_redirects=True,
                                 timeout=httpx2.Timeout(read_timeout(), connect=connect_timeout()))

        _http.set_client_factory(factory)
        _redact_client_logs()
        _installed = True


def _redact_client_logs() -> None:
    """huggingface_hub's own messages ("... thrown while requesting GET http://user:token@...")
    reach stderr through its handlers: mask secrets there too."""
    import logging

    from hub.redact import redact

    class Redact(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.msg, record.args = redact(record.getMessage()), ()
            return True

    root = logging.getLogger("huggingface_hub")
    if not os.environ.get("HF_HUB_VERBOSITY"):
        # a failure is one line: the client's "Retrying in 1s" chatter stays out unless asked for
        root.setLevel(logging.ERROR)
    for handler in [*root.handlers, *logging.getLogger().handlers]:
        handler.addFilter(Redact())


def _bounded(timeout: dict | None) -> dict:
    """A request's timeout dict with no unbounded (None) or over-long phase."""
    connect, read = connect_timeout(), read_timeout()
    caps = {"connect": connect, "read": read, "write": read, "pool": connect}
    timeout = dict(timeout or {})
    return {phase: cap if timeout.get(phase) is None else min(float(timeout[phase]), cap)
            for phase, cap in caps.items()}
