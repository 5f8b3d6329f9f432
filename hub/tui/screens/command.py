"""`:` command mode: type an action by name (`:tag`, `:delete`), `:sort KEY [desc]`,
`:filter QUERY` or `:theme NAME`; Tab completes, the hint line shows each command's key."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Static

from hub.tui.actions import ACTIONS, BY_NAME

EXTRA = {"sort": "sort KEY [desc]", "filter": "filter QUERY", "theme": "theme NAME"}


def command_names() -> list[str]:
    return [a.action for a in ACTIONS if a.action != "command_mode"] + list(EXTRA)


def run_command(screen, line: str) -> None:
    from hub.tui.widgets.adapter_table import SORT_LABELS

    word, _, rest = line.strip().lstrip(":").partition(" ")
    rest = rest.strip()
    if word == "sort":
        key, _, order = rest.partition(" ")
        if key not in SORT_LABELS:
            screen.notify(f"sort by one of: {', '.join(SORT_LABELS)}", severity="warning", markup=False)
            return
        screen.table.sort_by(key, desc=order.strip() == "desc")
    elif word == "filter":
        screen.filter_bar.set_text(rest)
    elif word == "theme":
        if rest not in screen.app.available_themes:
            screen.notify(f"themes: {', '.join(sorted(screen.app.available_themes))}", severity="warning",
                          markup=False)
            return
        screen.app.theme = rest
    elif word in BY_NAME:
        spec = BY_NAME[word]
        screen.call_later(screen.run_action, spec.binding_action)   # a coroutine: the message loop awaits it
    else:
        screen.notify(f"no command {word!r}: press : and Tab for the list", severity="warning", markup=False)


class CommandScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("tab", "complete", "Complete", priority=True)]

    def __init__(self) -> None:
        super().__init__(classes="command-screen")

    def action_complete(self) -> None:
        field = self.query_one(Input)
        if field._suggestion:
            field.value = field._suggestion
            field.cursor_position = len(field.value)

    def compose(self) -> ComposeResult:
        with Vertical(id="command-box"):
            yield Static(self._hint(""), id="command-hint", markup=False)
            yield Input(placeholder="command (Tab completes, Enter runs)", id="command-input", compact=True,
                        suggester=SuggestFromList(command_names(), case_sensitive=False))

    def _hint(self, text: str) -> str:
        word = text.strip().lstrip(":").split(" ")[0]
        matches = [a for a in ACTIONS if a.action.startswith(word) and a.action != "command_mode"]
        shown = [f"{a.action} ({a.key_display or a.key})" for a in matches[:8]]
        shown += [usage for name, usage in EXTRA.items() if name.startswith(word)]
        return "  ".join(shown) or "no such command"

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#command-hint", Static).update(self._hint(event.value))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
