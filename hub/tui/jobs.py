"""Run service calls off the UI thread and hand results back to it.

Every slow call (database pages, check, combine, merge, pull) goes through
:func:`run_in_thread`, so the event loop never waits on disk, torch or network.
A cancelled worker's result is dropped; errors reach the caller's ``on_error``
(by default a notification with the CLI's one-line message).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from textual.dom import DOMNode
from textual.worker import Worker, get_current_worker

from hub.progress import Progress


class Cancelled(Exception):
    """Raised inside a worker's progress callback once the user cancelled it."""


class ChildFailed(Exception):
    """A job in a child process failed; ``line`` is the CLI's one line for it."""

    def __init__(self, line: str) -> None:
        super().__init__(line)
        self.line = line


def error_line(exc: BaseException, fields: dict[str, str] | None = None) -> str:
    """The same one line the CLI prints for this error. ``fields`` maps the CLI options that
    its advice may name to what the form calls them (the form has no `--overwrite`)."""
    if isinstance(exc, ChildFailed):
        line = exc.line
    else:
        from hub.error_lines import render_error

        line = render_error(exc)[0]
    for option, label in (fields or {}).items():
        line = line.replace(option, label)
    return line


def run_in_thread(node: DOMNode, fn: Callable[[], Any], on_success: Callable[[Any], None] | None = None,
                  on_error: Callable[[BaseException], None] | None = None, *, group: str = "default",
                  exclusive: bool = False, description: str = "") -> Worker:
    app = node.app

    def job():
        worker = get_current_worker()
        try:
            result = fn()
        except Cancelled as exc:
            # stopped through a stop event: tell the owner it really stopped (a cancelled
            # worker's node may be gone, so nobody is told then)
            if not worker.is_cancelled and on_error is not None:
                app.call_from_thread(on_error, exc)
            return None
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a message, never a crash
            if not worker.is_cancelled:
                app.call_from_thread(on_error or app.report_error, exc)
            return None
        if not worker.is_cancelled and on_success is not None:
            app.call_from_thread(on_success, result)
        return result

    return node.run_worker(job, thread=True, group=group, exclusive=exclusive, exit_on_error=False,
                           description=description or getattr(fn, "__name__", "job"))


def progress_reporter(node: DOMNode, update: Progress, stop: threading.Event | None = None,
                      min_interval: float = 0.05) -> Callable[..., None]:
    """A service ``progress(done, total, item)`` callback for use inside a worker thread:
    forwards at most every ``min_interval`` seconds to ``update`` on the UI thread, and
    raises :class:`Cancelled` once ``stop`` is set (or the worker cancelled), which stops the
    service call where it stands; services clean up what they had half-written."""
    app = node.app
    worker = get_current_worker()
    last = [0.0]

    def progress(done, total, item="", *rest):
        if worker.is_cancelled or (stop is not None and stop.is_set()):
            raise Cancelled()
        now = time.monotonic()
        if now - last[0] >= min_interval or (total and done >= total):
            last[0] = now
            app.call_from_thread(update, done, total, str(item))

    return progress
