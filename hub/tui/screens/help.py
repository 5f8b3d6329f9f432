"""F1 / `?`: every key (built from the same tables as the bindings), the mouse, the filter
language, the flags and a short guide; j/k, arrows, page keys and the wheel scroll it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from hub.flags import FLAG_MEANINGS
from hub.tui.actions import ACTIONS, EXTRA_KEYS, MOUSE, TABLE_KEYS
from hub.tui.format import FLAG_LABELS

GUIDE = (
    ("Find an adapter", "press / and type words and key:value terms; Enter or ↓ goes back to the list, "
                        "Esc clears the filter"),
    ("See everything about it", "the tabs show config, per-module ranks, files and hashes, findings, lineage "
                                "and remote status of the row under the cursor; Enter focuses them, Esc returns"),
    ("Act on several", "mark with space, then t tag, d delete, e export, o combine, m merge apply to all marked"),
    ("Long jobs", "merge, combine, pull, export and scan run as tasks: T lists them, x cancels one; "
                  "quitting cancels them all"),
    ("Made a mistake", "z undoes the last tag, rename or delete (deleted adapters wait in the trash)"),
)
FILTER_TERMS = (
    ("words", "each must appear in the name, description or a target module"),
    ("base:llama", "base model (declared or registered) containing it"),
    ("r:16  alpha:32", "exactly this rank / alpha"),
    ("target:q_proj", "adapts a module whose name contains it (comma: several, all required)"),
    ("tag:prod", "has a tag containing it"),
    ("flag:dora  -flag:dora", "has / lacks a flag (not:dora is -flag:dora)"),
    ("fits:BASE", "checked compatible with this registered base"),
)


def help_rows() -> list[tuple[str, list[tuple[str, str]]]]:
    """(section, [(key, what)]): every key of the main screen, the table and the mouse."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for a in ACTIONS:
        key = a.key_display or a.key
        groups.setdefault(a.group, []).append(("space" if a.key == "space" else key, a.help))
    return ([(f"Keys: {name}", rows) for name, rows in groups.items()]
            + [("Keys: table", list(TABLE_KEYS)), ("Keys: more", list(EXTRA_KEYS)), ("Mouse", list(MOUSE)),
               ("Filter language (also `hub list QUERY`)", list(FILTER_TERMS)),
               ("Flags column", [(f"{FLAG_LABELS[f]} ({f})", text) for f, text in FLAG_MEANINGS.items()])])


def help_content() -> Content:
    parts: list = [("How to\n", "bold $text-primary")]
    for title, text in GUIDE:
        parts += [(f"  {title}: ", "bold"), f"{text}\n"]
    for section, rows in help_rows():
        parts.append((f"\n{section}\n", "bold $text-primary"))
        width = max(len(k) for k, _ in rows)
        for key, text in rows:
            parts += [(f"  {key:<{width}}", "bold $text-accent"), f"  {text}\n"]
    return Content.assemble(*parts)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,question_mark,q,f1", "close", "Close"),
        Binding("j,down", "scroll(1)", "Down", show=False),
        Binding("k,up", "scroll(-1)", "Up", show=False),
        Binding("pagedown,space", "page(1)", "Page down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("g,home", "top", "Top", show=False),
        Binding("G,end", "bottom", "Bottom", show=False),
    ]

    def __init__(self) -> None:
        super().__init__(classes="dialog-screen")

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help-dialog"):
            yield Label("hub — keys and guide (j/k scroll, Esc closes)", classes="dialog-title")
            with VerticalScroll(id="help-scroll"):
                yield Static(help_content(), id="help-text")

    @property
    def scroller(self) -> VerticalScroll:
        return self.query_one("#help-scroll", VerticalScroll)

    def action_scroll(self, lines: int) -> None:
        self.scroller.scroll_relative(y=lines, animate=False)

    def action_page(self, direction: int) -> None:
        self.scroller.scroll_relative(y=direction * max(self.scroller.size.height - 1, 1), animate=False)

    def action_top(self) -> None:
        self.scroller.scroll_home(animate=False)

    def action_bottom(self) -> None:
        self.scroller.scroll_end(animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
