"""`z` resize, `f` fix, `X` extract: derive an adapter from the selected one, then show the
per-module report (action, rank, relative error) and the totals, as the CLI prints them."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, Static

from hub.tui.jobs import error_line, progress_reporter, run_in_thread

# operation -> (title, [(field id, label, placeholder)])
FORMS = {
    "resize": ("Resize {name}", [("rank", "Rank", "target rank K, e.g. 8"),
                                 ("energy", "Energy", "or/and: energy kept per module, e.g. 0.99"),
                                 ("new", "New name", "default NAME-rK")]),
    "fix": ("Fix {name} for a runtime", [("runtime", "Runtime", "vllm, llama.cpp, ollama or peft"),
                                         ("max_rank", "Max rank", "vLLM --max-lora-rank (default 16)"),
                                         ("base", "Base", "needed for DoRA / modules_to_save (default: its base)"),
                                         ("new", "New name", "default NAME-RUNTIME")]),
    "extract": ("Extract a LoRA from a fine-tuned model", [
        ("tuned", "Tuned", "folder of the fully fine-tuned model"),
        ("base", "Base", "registered base or model folder (default: this adapter's base)"),
        ("rank", "Rank", "rank K, e.g. 16"), ("energy", "Energy", "or/and: energy kept, e.g. 0.9"),
        ("new", "New name", "default TUNED-lora-rK")]),
}


def _number(text: str, kind):
    text = text.strip()
    return kind(text) if text else None


class SurgeryScreen(ModalScreen[str | None]):
    """Dismisses with the new adapter's name (None when nothing was registered)."""

    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, hub, name: str, operation: str) -> None:
        super().__init__(classes="dialog-screen")
        self.hub, self.adapter, self.operation = hub, name, operation
        self.created: str | None = None
        self.finished = 0      # runs that ended (shown or failed): what tests wait for

    def compose(self) -> ComposeResult:
        title, fields = FORMS[self.operation]
        with Vertical(classes="dialog check-dialog"):
            yield Label(title.format(name=self.adapter), classes="dialog-title", markup=False)
            for key, label, hint in fields:
                with Horizontal(classes="form-row"):
                    yield Label(label, classes="form-label")
                    yield Input(placeholder=hint, id=f"sg-{key}", compact=True)
            yield Static("", id="sg-status")
            yield DataTable(id="sg-report", cursor_type="row", zebra_stripes=True)
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.operation.capitalize(), id="sg-go", variant="primary")
                yield Button("Close", id="sg-close")

    def on_mount(self) -> None:
        self.query_one("#sg-report", DataTable).add_columns("Module", "Action", "Rank", "Rel. error", "Note")
        self.query(Input).first().focus()

    def _value(self, key: str) -> str:
        found = self.query(f"#sg-{key}")
        return found.first(Input).value.strip() if found else ""

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.run()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "sg-go":
            self.run()
        else:
            self.action_close()

    def action_close(self) -> None:
        self.dismiss(self.created)

    def _call(self):
        """The service call for the form as filled in (raises on bad numbers)."""
        hub, name, v = self.hub, self.adapter, self._value
        rank, energy, new = _number(v("rank"), int), _number(v("energy"), float), v("new") or None
        if self.operation == "resize":
            return lambda progress: hub.resize(name, rank=rank, energy=energy, new_name=new, progress=progress)
        if self.operation == "fix":
            runtime, max_rank, base = v("runtime") or "vllm", _number(v("max_rank"), int), v("base") or None
            return lambda progress: hub.fix(name, runtime, base=base, max_lora_rank=max_rank, new_name=new,
                                            progress=progress)
        base = v("base") or hub.get(name).base
        if not base:
            raise ValueError("give a base: this adapter has no registered base")
        return lambda progress: hub.extract(base, v("tuned"), rank=rank, energy=energy, new_name=new,
                                            progress=progress)

    def run(self) -> None:
        status = self.query_one("#sg-status", Static)
        try:
            call = self._call()
        except ValueError as exc:
            status.update(Content.assemble((f"not a number: {exc}", "$text-error")))
            self.finished += 1
            return
        status.update(f"{self.operation} running …")

        def update(done, total, item):
            status.update(f"{self.operation}: {done}/{total} {item}")

        run_in_thread(self, lambda: call(progress_reporter(self, update)), self._show, self._failed,
                      group="surgery", exclusive=True)

    def _show(self, outcome) -> None:
        s = outcome.surgery
        table = self.query_one("#sg-report", DataTable)
        table.clear()
        for c in s.changes:
            before = "-" if c.rank_before is None else c.rank_before
            table.add_row(c.path, c.action, f"{before} → {c.rank_after}", f"{c.rel_error:.3e}", c.note)
        total = s.total_rel_error
        line = outcome.message + (f"; total relative error {total:.3e}" if total is not None else "")
        if outcome.extra.get("serve_command") and outcome.record is not None:
            line += "\nserve: " + " && ".join(outcome.extra["serve_command"])
        self.query_one("#sg-status", Static).update(Content(line))
        if outcome.record is not None:
            self.created = outcome.record.name
        self.finished += 1

    def _failed(self, exc: BaseException) -> None:
        self.query_one("#sg-status", Static).update(Content.assemble((error_line(exc), "$text-error")))
        self.finished += 1


def open_surgery(screen, names: list[str], operation: str) -> None:
    """Push the dialog for the first target; on success the main screen moves to the new adapter."""
    if not names:
        return

    def done(new_name: str | None) -> None:
        if new_name:
            screen.show_adapter(new_name)

    screen.app.push_screen(SurgeryScreen(screen.hub, names[0], operation), done)


def open_resize(screen, names: list[str]) -> None:
    open_surgery(screen, names, "resize")


def open_fix(screen, names: list[str]) -> None:
    open_surgery(screen, names, "fix")


def open_extract(screen, names: list[str]) -> None:
    open_surgery(screen, names, "extract")
