"""Small modal dialogs: confirm, and one-line prompts (tag, rename, export)."""

from __future__ import annotations

from typing import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from hub.errors import HubError
from hub.tui.jobs import error_line


class ConfirmScreen(ModalScreen[bool]):
    """Yes/no, with the destructive button in the error colour."""

    BINDINGS = [
        Binding("escape,n", "answer(False)", "Cancel"),
        Binding("y", "answer(True)", "Yes"),
    ]

    def __init__(self, title: str, body: str, yes: str = "Delete", danger: bool = True) -> None:
        super().__init__(classes="dialog-screen")
        self.title_text, self.body, self.yes, self.danger = title, body, yes, danger

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            yield Static(self.body, classes="dialog-body", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="error" if self.danger else "primary")
                yield Button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class PromptScreen(ModalScreen[str | None]):
    """One text field; ``validate`` raising HubError keeps the dialog open with its message."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, label: str, value: str = "", placeholder: str = "",
                 validate: Callable[[str], object] | None = None, ok: str = "OK") -> None:
        super().__init__(classes="dialog-screen")
        self.title_text, self.label, self.value = title, label, value
        self.placeholder, self.validate, self.ok = placeholder, validate, ok

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            yield Label(self.label, classes="dialog-body", markup=False)
            yield Input(self.value, placeholder=self.placeholder, id="prompt-input")
            yield Static("", id="prompt-error", classes="dialog-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.ok, id="ok", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        field = self.query_one("#prompt-input", Input)
        field.focus()
        field.select_all()   # typing replaces the suggested value

    def _submit(self) -> None:
        value = self.query_one("#prompt-input", Input).value.strip()
        if self.validate is not None:
            try:
                self.validate(value)
            except HubError as exc:
                self.query_one("#prompt-error", Static).update(error_line(exc))
                return
        self.dismiss(value)

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
