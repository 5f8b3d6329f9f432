"""Every action of the main screen, declared once: the key bindings, the footer, the
command palette and the help screen are all built from this table."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class UiAction:
    key: str
    action: str          # MainScreen.action_<action>
    label: str           # footer text (short)
    help: str            # palette and help screen text
    key_display: str | None = None
    footer: bool = True  # the 80-column footer holds the main ones; all are in the palette and on ?


ACTIONS: tuple[UiAction, ...] = (
    UiAction("question_mark", "help", "Help", "Show keys and a short guide", "?"),
    UiAction("space", "toggle_mark", "Mark", "Mark or unmark the adapter under the cursor (for combine and merge)",
             "␣"),
    UiAction("c", "check", "Check", "Check the adapter against a base model: findings by severity"),
    UiAction("o", "combine", "Combine", "Combine the marked adapters into a new adapter (weights, method, preview)"),
    UiAction("m", "merge", "Merge", "Merge the marked (or current) adapters into a base model, with progress"),
    UiAction("p", "pull", "Pull", "Pull an adapter from the Hugging Face Hub (repo id and revision)"),
    UiAction("t", "tag", "Tag", "Add tags to the adapter, or remove them with a leading -"),
    UiAction("r", "rename", "Rename", "Rename the adapter"),
    UiAction("d", "delete", "Delete", "Remove the adapter from the registry (asks first)"),
    UiAction("e", "export", "Export", "Write the adapter as a PEFT folder"),
    UiAction("slash", "focus_filter", "Find", "Filter the table as you type (name, base, rank, target, tag)", "/"),
    UiAction("s", "sort", "Sort", "Sort by the next column (S reverses; or click a column header)"),
    UiAction("u", "check_remote", "Remote", "Ask the Hub whether this adapter's remotes moved on", footer=False),
    UiAction("q", "quit", "Quit", "Quit hub"),
)

EXTRA_BINDINGS = (
    Binding("S", "reverse_sort", "Reverse sort", show=False),
    Binding("delete", "delete", "Delete", show=False),
    Binding("escape", "escape", "Back", show=False),
    Binding("f5,ctrl+r", "reload", "Reload", show=False),
    Binding("x", "clear_marks", "Clear marks", show=False),
    *(Binding(str(i), f"details_tab({i})", f"Details tab {i}", show=False) for i in range(1, 8)),
)


def bindings() -> list[Binding]:
    return [Binding(a.key, a.action, a.label, show=a.footer, key_display=a.key_display, tooltip=a.help)
            for a in ACTIONS] + \
        list(EXTRA_BINDINGS)
