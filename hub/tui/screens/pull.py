"""`p`: pull an adapter from the Hugging Face Hub (repo id + revision), with a byte progress bar."""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, ProgressBar, Static

from hub.tui.format import human_size
from hub.tui.jobs import error_line, progress_reporter, run_in_thread


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
        self._started = 0.0
        self._bytes = (0, 0, "")

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
        if self.busy:
            self.notify("a pull is running; wait for it (a pull leaves nothing behind if it fails)",
                        severity="warning")
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
        self.query_one("#pull-progress").display = True
        status.update(f"pulling {spec} …")
        self._ticker = self.set_interval(0.5, self._tick)
        hub = self.hub
        self._bytes = (0, 0, "")

        def update(done, total, item):
            self._bytes = (done, total, item)
            if total:
                self.query_one("#pull-progress", ProgressBar).update(total=total, progress=done)

        def run():
            return hub.pull(spec, subfolder=subfolder, name=name, progress=progress_reporter(self, update))

        run_in_thread(self, run, self._done, self._failed, group="pull", exclusive=True)

    def _tick(self) -> None:
        done, total, item = self._bytes
        got = f"{human_size(done)} of {human_size(total)} {item}" if total else "asking the Hub"
        self.query_one("#pull-status", Static).update(
            f"pulling … {time.monotonic() - self._started:.0f} s · {got}")

    def _finish(self) -> None:
        self.busy = False
        self._ticker.stop()
        self.query_one("#pull-go", Button).disabled = False
        self.query_one("#pull-progress").display = False

    def _done(self, results) -> None:
        self._finish()
        result = results[0]
        self.notify(result.message)
        self.dismiss(result.name)

    def _failed(self, exc: BaseException) -> None:
        self._finish()
        line = error_line(exc)
        self.query_one("#pull-status", Static).update(line)
        self.app.report_error(exc)
