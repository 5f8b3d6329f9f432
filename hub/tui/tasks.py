"""Background jobs: one list for the whole app (the task screen shows it, `T`), each with
progress, a state and a cancel that works.

Two kinds of job:
- in a thread (merge, combine, export, tag …): the service reports progress, and the
  reporter raises Cancelled at the next report once the job is cancelled;
- in a child process (pull, push, scan: anything that can block in a socket read,
  see hub.tui.child_jobs): cancel terminates the child, so nothing can keep it alive.

Quitting the app cancels every job, so the process ends with the UI.
"""

from __future__ import annotations

import itertools
import json
import os
import select
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from textual.message import Message

from hub.tui.jobs import Cancelled, ChildFailed, run_in_thread

KILL_GRACE_S = 0.5      # a terminated child gets this long before SIGKILL


@dataclass
class Task:
    id: int
    title: str
    state: str = "running"          # running | done | failed | cancelled
    done: int = 0
    total: int = 0
    item: str = ""
    message: str = ""
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    stop: threading.Event = field(default_factory=threading.Event, repr=False)
    process: Any = field(default=None, repr=False)     # a child's subprocess.Popen

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None

    def cancel(self) -> None:
        self.stop.set()
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.terminate()


class TaskManager:
    """The app's jobs. ``changed`` is posted to the app whenever one moves."""

    class Changed(Message, bubble=False):   # the app forwards it to each screen; no echo back
        def __init__(self, task: Task) -> None:
            super().__init__()
            self.task = task

    def __init__(self, app) -> None:
        self.app = app
        self.tasks: list[Task] = []
        self._ids = itertools.count(1)

    @property
    def running(self) -> list[Task]:
        return [t for t in self.tasks if t.running]

    def _changed(self, task: Task) -> None:
        self.app.post_message(self.Changed(task))

    def _progress(self, task: Task, on_progress: Callable | None):
        """A service progress callback for a worker thread."""
        app = self.app
        last = [0.0]

        def progress(done, total, item="", *_rest):
            if task.stop.is_set():
                raise Cancelled()
            task.done, task.total, task.item = int(done or 0), int(total or 0), str(item)
            now = time.monotonic()
            if now - last[0] >= 0.05 or (total and done >= total):
                last[0] = now
                app.call_from_thread(self._changed, task)
                if on_progress is not None:
                    app.call_from_thread(on_progress, task)

        return progress

    def start(self, title: str, fn: Callable[[Callable], Any], on_success: Callable[[Any], None] | None = None,
              on_error: Callable[[BaseException], None] | None = None, on_progress: Callable | None = None,
              notify: bool = True) -> Task:
        """Run ``fn(progress)`` in a thread as a task."""
        task = Task(next(self._ids), title)
        self.tasks.append(task)
        self._changed(task)
        progress = self._progress(task, on_progress)
        run_in_thread(self.app, lambda: fn(progress), lambda r: self._finish(task, r, None, on_success, on_error,
                                                                             notify),
                      lambda e: self._finish(task, None, e, on_success, on_error, notify),
                      group=f"task-{task.id}", description=title)
        return task

    def start_child(self, title: str, job: str, kwargs: dict, on_success=None, on_error=None, on_progress=None,
                    notify: bool = True) -> Task:
        """Run hub.tui.child_jobs.JOBS[job](hub, progress, **kwargs) in a child process as a task."""
        hub = self.app.hub
        home, db_url = str(hub.home), hub.db.url
        task = Task(next(self._ids), title)
        self.tasks.append(task)
        self._changed(task)
        progress = self._progress(task, on_progress)

        def run():
            spec = json.dumps({"home": home, "db_url": db_url, "job": job, "kwargs": kwargs})
            proc = subprocess.Popen([sys.executable, "-m", "hub.tui.child_jobs", spec], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True)
            task.process = proc
            lines = _Lines(proc.stdout)
            try:
                while True:
                    if task.stop.is_set():
                        raise Cancelled()
                    msg = lines.next(0.05)
                    if msg is None:
                        if proc.poll() is not None and lines.eof:
                            if task.stop.is_set():   # cancel killed it while we waited for a line
                                raise Cancelled()
                            raise ChildFailed(f"hub: error: the {job} process ended unexpectedly "
                                              f"(exit code {proc.returncode})")
                        continue
                    if msg[0] == "progress":
                        progress(*msg[1:])
                    elif msg[0] == "error":
                        raise ChildFailed(msg[1])
                    else:
                        return msg[1]
            finally:
                _end(proc)
                proc.stdout.close()

        run_in_thread(self.app, run, lambda r: self._finish(task, r, None, on_success, on_error, notify),
                      lambda e: self._finish(task, None, e, on_success, on_error, notify),
                      group=f"task-{task.id}", description=title)
        return task

    def _finish(self, task: Task, result, exc, on_success, on_error, notify: bool) -> None:
        from hub.tui.jobs import error_line

        task.ended = time.monotonic()
        task.process = None
        if exc is None:
            task.state = "done"
            task.message = (result.get("message") if isinstance(result, dict) else getattr(result, "message", "")) \
                or "done"
        elif isinstance(exc, Cancelled):
            task.state, task.message = "cancelled", "cancelled"
        else:
            task.state, task.message = "failed", error_line(exc)
        self._changed(task)
        if notify:
            severity = {"done": "information", "cancelled": "warning", "failed": "error"}[task.state]
            self.app.notify(f"{task.title}: {task.message}", severity=severity, markup=False)
        if exc is None and on_success is not None:
            on_success(result)
        elif exc is not None and on_error is not None:
            on_error(exc)

    def cancel_all(self) -> None:
        for task in self.running:
            task.cancel()


class _Lines:
    """JSON lines from a child's stdout, read with a timeout (select), so that the reading
    thread can notice a cancel."""

    def __init__(self, stream) -> None:
        self.stream, self.buffer, self.eof = stream, b"", False

    def next(self, timeout: float):
        while b"\n" not in self.buffer:
            if self.eof:
                return None
            ready, _, _ = select.select([self.stream], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(self.stream.fileno(), 65536)
            if not chunk:
                self.eof = True
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)


def _end(proc) -> None:
    """Stop a child for good: terminate, then kill if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(KILL_GRACE_S)
