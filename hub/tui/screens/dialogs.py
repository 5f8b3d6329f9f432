"""Small modal dialogs: confirm, one-line prompts (tag, rename, export), and a choice."""

from __future__ import annotations

from typing import Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

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


class PromptScreen(ModalScreen):
    """One text field; ``validate`` raising HubError keeps the dialog open with its message.
    Dismisses with the text, or with (text, ticked) when it has a ``checkbox``, or (text, second
    field's text) when it has a ``second`` (label, placeholder) field; None if cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, label: str, value: str = "", placeholder: str = "",
                 validate: Callable[[str], object] | None = None, ok: str = "OK", checkbox: str | None = None,
                 second: tuple[str, str] | None = None) -> None:
        super().__init__(classes="dialog-screen")
        self.second = second
        self.title_text, self.label, self.value = title, label, value
        self.placeholder, self.validate, self.ok, self.checkbox = placeholder, validate, ok, checkbox

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            yield Label(self.label, classes="dialog-body", markup=False)
            yield Input(self.value, placeholder=self.placeholder, id="prompt-input")
            if self.checkbox:
                yield Checkbox(self.checkbox, id="prompt-check", compact=True)
            if self.second:
                yield Label(self.second[0], classes="dialog-body", markup=False)
                yield Input(placeholder=self.second[1], id="prompt-second")
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
        if self.checkbox:
            self.dismiss((value, self.query_one("#prompt-check", Checkbox).value))
        elif self.second:
            self.dismiss((value, self.query_one("#prompt-second", Input).value.strip()))
        else:
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


class ChoiceScreen(ModalScreen[str | None]):
    """Pick one of a few options, by its key or with the arrows and Enter."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, choices: list[tuple[str, str, str]]) -> None:
        """``choices``: (value, key, label)."""
        super().__init__(classes="dialog-screen")
        self.title_text, self.choices = title, choices

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            yield OptionList(*(Option(f"{key}  {label}", id=value) for value, key, label in self.choices),
                             id="choices", markup=False)

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_key(self, event) -> None:
        for value, key, _label in self.choices:
            if event.character == key:
                event.stop()
                self.dismiss(value)
                return

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
