"""`?`: the keys and a short guide, so nobody needs the docs to get going."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from hub.tui.actions import ACTIONS

GUIDE = (
    ("Find an adapter", "press / and type; Tab moves on to Base, R, Target and Tag; Enter goes back to the list"),
    ("See everything about it", "the tabs show config, per-module ranks, files and hashes, findings, lineage "
                                "and remote status of the row under the cursor; Enter focuses them, Esc returns"),
    ("Check it against a base", "c, then a base model folder (or a registered base name), Enter"),
    ("Combine adapters", "mark two or more with space, press o, set weights and method, read the preview, "
                         "then Combine; the new adapter appears under the cursor"),
    ("Merge into a base", "mark adapters (or stay on one), press m, give the base and an output folder"),
    ("Pull from the Hub", "p, then a repo id and a revision"),
    ("Anything else", "ctrl+p opens the command palette: every action, and Theme for light or dark"),
)


def help_content() -> Content:
    # the guide first: a new user wants "how do I …", the key list is for later
    parts: list = [("How to\n", "bold $text-primary")]
    for title, text in GUIDE:
        parts += [(f"  {title}: ", "bold"), f"{text}\n"]
    parts.append(("\nKeys\n", "bold $text-primary"))
    keys = [("space" if a.key == "space" else (a.key_display or a.key), a.help) for a in ACTIONS] + [
        ("S", "Reverse the sort order"),
        ("x", "Clear all marks"),
        ("f5", "Reload from the registry"),
        ("1-7", "Details tab: Overview, Modules, Files, Findings, Lineage, Remote, Config"),
        ("enter", "Into the details tabs (left/right switch; esc comes back)"),
        ("ctrl+p", "Command palette: every action, and Theme (light or dark)"),
    ]
    for key, text in keys:
        parts += [(f"  {key:<7}", "bold $text-accent"), f" {text}\n"]
    return Content.assemble(*parts)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self) -> None:
        super().__init__(classes="dialog-screen")

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help-dialog"):
            yield Label("hub — keys and guide (Esc closes)", classes="dialog-title")
            with VerticalScroll():
                yield Static(help_content(), id="help-text")

    def action_close(self) -> None:
        self.dismiss(None)
