"""`E` export as GGUF: `hub export NAME FILE.gguf --format gguf [--base B] [--outtype T]` from a
form, run as a task (progress in the task list, cancellable); llama.cpp loads the file with
`llama-cli -m BASE.gguf --lora FILE.gguf`."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

OUTTYPES = ("f32", "f16", "bf16", "q8_0")   # the CLI's --outtype choices; f32 is its default


class GgufExportScreen(ModalScreen[dict | None]):
    """Dismisses with {"path", "base", "outtype", "overwrite"}; None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, name: str, default_path: str) -> None:
        super().__init__(classes="dialog-screen")
        self.adapter, self.default_path = name, default_path

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Export {self.adapter} as GGUF (llama.cpp --lora)", classes="dialog-title", markup=False)
            with Horizontal(classes="form-row"):
                yield Label("File", classes="form-label")
                yield Input(self.default_path, id="gguf-path", compact=True)
            with Horizontal(classes="form-row"):
                yield Label("Base", classes="form-label")
                yield Input(placeholder="registered base or model folder (default: the base it fits)",
                            id="gguf-base", compact=True)
            with Horizontal(classes="form-row"):
                yield Label("Type", classes="form-label")
                yield Select([(t, t) for t in OUTTYPES], value="f32", allow_blank=False, id="gguf-outtype",
                             compact=True)
            yield Checkbox("Overwrite an existing file", id="gguf-overwrite", compact=True)
            yield Static("", id="gguf-error", classes="dialog-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Export", id="ok", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#gguf-path", Input).focus()

    def _submit(self) -> None:
        path = self.query_one("#gguf-path", Input).value.strip()
        if not path:
            self.query_one("#gguf-error", Static).update("name the .gguf file to write")
            return
        self.dismiss({"path": str(Path(path).expanduser()), "base": self.query_one("#gguf-base", Input).value.strip()
                      or None, "outtype": str(self.query_one("#gguf-outtype", Select).value),
                      "overwrite": self.query_one("#gguf-overwrite", Checkbox).value})

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


def open_gguf_export(screen, names: list[str]) -> None:
    """The form for the cursor's adapter, then the export as a task."""
    if not names:
        return
    name, hub = names[0], screen.hub

    def done(answer: dict | None) -> None:
        if not answer:
            return

        def run(progress):
            summary = hub.export_as(name, answer["path"], "gguf", base=answer["base"], outtype=answer["outtype"],
                                    overwrite=answer["overwrite"], progress=progress)
            return {**summary, "message": f"exported {name} to {summary['path']}"}

        screen.app.tasks.start(f"export {name} as GGUF", run)

    default = str(Path.cwd() / f"{name.replace('/', '-')}.gguf")
    screen.app.push_screen(GgufExportScreen(name, default), done)
