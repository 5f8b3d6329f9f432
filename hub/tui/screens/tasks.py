"""`T`: the background jobs, newest first: a spinner while running, progress, state, and
cancel (`x` or delete) on the highlighted one."""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, ProgressBar, Static

from hub.tui.format import human_size, inert
from hub.tui.tasks import Task, TaskManager

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
STATE_MARK = {"done": "✔", "failed": "✘", "cancelled": "⊘"}


class TaskRow(Horizontal, can_focus=True):
    def __init__(self, task: Task) -> None:
        super().__init__(classes="task-row", id=f"task-{task.id}")
        self.job = task

    def compose(self) -> ComposeResult:
        yield Static("", classes="task-spin", markup=False)
        yield Static(inert(self.job.title), classes="task-title", markup=False)
        yield ProgressBar(total=None, show_eta=False, show_percentage=True, classes="task-bar")
        yield Static("", classes="task-state", markup=False)

    def redraw(self, frame: int) -> None:
        if len(self.children) < 4:
            return   # not composed yet: the next tick draws it
        t = self.job
        self.query_one(".task-spin", Static).update(SPINNER[frame % len(SPINNER)] if t.running
                                                    else STATE_MARK.get(t.state, " "))
        bar = self.query_one(ProgressBar)
        if t.total:
            bar.update(total=t.total, progress=t.done)
        elif not t.running:
            bar.update(total=1, progress=1 if t.state == "done" else 0)
        took = (t.ended or time.monotonic()) - t.started
        detail = t.item if t.running else t.message
        if t.running and t.total and t.total > 1 << 20:
            detail = f"{human_size(t.done)} of {human_size(t.total)} {t.item}"
        self.query_one(".task-state", Static).update(inert(f"{t.state} {took:.0f}s  {detail}"))


class TasksScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,T,q", "close", "Close"),
        Binding("x,delete", "cancel_task", "Cancel job"),
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
    ]

    def __init__(self) -> None:
        super().__init__(classes="dialog-screen")
        self._frame = 0

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog tasks-dialog"):
            yield Label("Tasks  (x cancels the highlighted one, Esc closes)", classes="dialog-title")
            yield Static("no jobs yet: merge, combine, pull, export and scan run here", id="tasks-empty",
                         markup=False)
            yield VerticalScroll(id="tasks-list")

    def on_mount(self) -> None:
        self._sync()
        self.set_interval(0.1, self._tick)

    @property
    def manager(self) -> TaskManager:
        return self.app.tasks

    def _rows(self) -> list[TaskRow]:
        return list(self.query(TaskRow))

    def _sync(self) -> None:
        have = {row.job.id for row in self._rows()}
        box = self.query_one("#tasks-list", VerticalScroll)
        for task in self.manager.tasks:     # each new one on top: newest first
            if task.id not in have:
                box.mount(TaskRow(task), before=0 if box.children else None)
        self.query_one("#tasks-empty").display = not self.manager.tasks
        rows = self._rows()
        if rows and not any(r.has_focus for r in rows):
            rows[0].focus()
        for row in rows:
            row.redraw(self._frame)

    def _tick(self) -> None:
        self._frame += 1
        self._sync()

    def on_task_manager_changed(self, _event) -> None:
        self._sync()

    def action_move(self, delta: int) -> None:
        rows = self._rows()
        if not rows:
            return
        at = next((i for i, r in enumerate(rows) if r.has_focus), 0)
        rows[max(0, min(len(rows) - 1, at + delta))].focus()

    def action_cancel_task(self) -> None:
        row = next((r for r in self._rows() if r.has_focus), None)
        if row is None or not row.job.running:
            self.notify("no running job highlighted", severity="warning")
            return
        row.job.cancel()
        self.notify(f"cancelling {row.job.title} …", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
