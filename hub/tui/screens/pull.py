"""`p`: pull an adapter from the Hugging Face Hub (repo id + revision), with a byte progress bar.

The pull runs in a child process (hub.tui.child_jobs): a server that accepts and never
answers cannot hold it, because Cancel (or Esc, or quitting) terminates the child."""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, ProgressBar, Static

from hub.tui.format import human_size
from hub.tui.jobs import Cancelled, error_line


def pull_spec(repo_id: str, revision: str) -> str:
    repo_id, revision = repo_id.strip(), revision.strip()
    return f"{repo_id}@{revision}" if revision else repo_id


class PullScreen(ModalScreen[str | None]):
    """Dismisses with the registered adapter's name (None if nothing was pulled)."""

    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, hub) -> None:
        super().__init__(classes="dialog-screen")
        self.hub = hub
        self.busy = False
        self.job = None
        self._started = 0.0

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="pull-dialog"):
            yield Label("Pull from the Hugging Face Hub", classes="dialog-title")
            with Horizontal(classes="form-row"):
                yield Label("Repo id", classes="form-label")
                yield Input(placeholder="user/my-lora", id="pull-repo", compact=True)
            with Horizontal(classes="form-row"):
                yield Label("Revision", classes="form-label")
                yield Input(placeholder="main (branch, tag or commit)", id="pull-revision", compact=True)
            with Horizontal(classes="form-row"):
                yield Label("Subfolder", classes="form-label")
                yield Input(placeholder="only if the repo holds several adapters", id="pull-subfolder", compact=True)
            with Horizontal(classes="form-row"):
                yield Label("Name", classes="form-label")
                yield Input(placeholder="default: from the repo name", id="pull-name", compact=True)
            yield ProgressBar(total=None, show_eta=False, id="pull-progress")
            yield Static("", id="pull-status", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Pull", id="pull-go", variant="primary")
                yield Button("Close", id="pull-close")

    def on_mount(self) -> None:
        self.query_one("#pull-progress").display = False
        self.query_one("#pull-repo", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.start()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "pull-go":
            self.start()
        else:
            self.action_close()

    def action_close(self) -> None:
        if self.busy and self.job is not None:
            self.job.cancel()      # terminates the pull's process; nothing is registered
            self.query_one("#pull-status", Static).update("cancelling …")
            return
        self.dismiss(None)

    def _value(self, wid: str) -> str:
        return self.query_one(f"#{wid}", Input).value.strip()

    def start(self) -> None:
        if self.busy:
            return
        repo = self._value("pull-repo")
        status = self.query_one("#pull-status", Static)
        if not repo:
            status.update("give a repo id, e.g. user/my-lora")
            self.query_one("#pull-repo", Input).focus()
            return
        spec = pull_spec(repo, self._value("pull-revision"))
        subfolder = self._value("pull-subfolder") or None
        name = self._value("pull-name") or None
        self.busy = True
        self._started = time.monotonic()
        self.query_one("#pull-go", Button).disabled = True
        self.query_one("#pull-close", Button).label = "Cancel"
        self.query_one("#pull-progress").display = True
        status.update(f"pulling {spec} …")
        self._ticker = self.set_interval(0.5, self._tick)

        def update(task):
            if task.total and self.is_attached:
                self.query_one("#pull-progress", ProgressBar).update(total=task.total, progress=task.done)

        self.job = self.app.tasks.start_child(f"pull {spec}", "pull",
                                               {"spec": spec, "subfolder": subfolder, "name": name},
                                               self._done, self._failed, update, notify=False)

    def _tick(self) -> None:
        task = self.job
        if task is None:
            return
        got = f"{human_size(task.done)} of {human_size(task.total)} {task.item}" if task.total else "asking the Hub"
        self.query_one("#pull-status", Static).update(
            f"pulling … {time.monotonic() - self._started:.0f} s · {got}")

    def _finish(self) -> None:
        self.busy = False
        self.job = None
        self._ticker.stop()
        if self.is_attached:
            self.query_one("#pull-go", Button).disabled = False
            self.query_one("#pull-close", Button).label = "Close"
            self.query_one("#pull-progress").display = False

    def _done(self, result) -> None:
        self._finish()
        self.notify(result["message"], markup=False)
        if self.is_attached:
            self.dismiss(result["name"])

    def _failed(self, exc: BaseException) -> None:
        self._finish()
        line = "pull cancelled; nothing was registered" if isinstance(exc, Cancelled) else error_line(exc)
        if self.is_attached:
            self.query_one("#pull-status", Static).update(line)
        self.notify(line, severity="warning" if isinstance(exc, Cancelled) else "error", timeout=10, markup=False)
