"""Every action of the main screen, declared once: the key bindings, the footer, the command
palette, `:` command mode and the help screen are all built from this table.

Adding an action is one entry here plus one function, e.g. for a capability of your own:

    UiAction("R", "resize", "Resize", "Resize the adapter's rank", targets="row",
             handler="hub.tui.screens.resize:open_resize"),

with ``def open_resize(screen, names): ...`` in your module (``screen`` is the MainScreen,
``names`` the adapters the action applies to: the marked ones, or the one under the cursor).
Actions without a handler are MainScreen.action_<action> methods.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class UiAction:
    key: str
    action: str          # the command name (`:NAME`), and MainScreen.action_<action> without a handler
    label: str           # footer text (short)
    help: str            # palette and help screen text
    key_display: str | None = None
    footer: int = 0      # footer position (1 first); 0: not in the footer (help, palette and `:` have it)
    targets: str = ""    # "row": the cursor's adapter; "marked": the marked ones, else the cursor's; "": none
    group: str = "Adapter"
    handler: str | None = None   # "module:function" called as function(screen, names)

    @property
    def binding_action(self) -> str:
        return f"run({self.action!r})" if self.handler else self.action

    def call(self, screen, names: list[str]):
        module, _, func = (self.handler or "").partition(":")
        return getattr(importlib.import_module(module), func)(screen, names)


ACTIONS: tuple[UiAction, ...] = (
    # the footer shows the first ones that fit: at 60 columns help, find, sort and quit
    UiAction("f1", "help", "Help", "Show every key, the filter language and a short guide", "F1", footer=1,
             group="App"),
    UiAction("slash", "focus_filter", "Find", "Filter: words, base: r: alpha: target: tag: flag: fits: "
             "(Esc clears)", "/", footer=2, group="Browse"),
    UiAction("s", "sort", "Sort", "Sort by the next column, then by date and parameters (S reverses)", footer=3,
             group="Browse"),
    UiAction("q", "quit", "Quit", "Quit hub (running jobs are cancelled); ctrl+c too", footer=4, group="App"),
    UiAction("space", "toggle_mark", "Mark", "Mark or unmark the adapter under the cursor (bulk actions, combine, "
             "merge)", "␣", footer=5, targets="row", group="Browse"),
    UiAction("T", "tasks", "Tasks", "Background jobs: progress, cancel", footer=6, group="App"),
    UiAction("c", "check", "Check", "Check the adapter against a base model: findings by severity", footer=7,
             targets="row"),
    UiAction("o", "combine", "Combine", "Combine the marked adapters into a new adapter (weights, method, preview)",
             footer=8, targets="marked"),
    UiAction("m", "merge", "Merge", "Merge the marked (or current) adapters into a base model, with progress",
             footer=9, targets="marked"),
    UiAction("t", "tag", "Tag", "Add tags to the marked (or current) adapters, or remove them with a leading -",
             footer=10, targets="marked"),
    UiAction("d", "delete", "Delete", "Move the marked (or current) adapters to the trash (asks; names what "
             "depends on them)", footer=11, targets="marked"),
    UiAction("e", "export", "Export", "Write the marked (or current) adapters as PEFT folders", footer=12,
             targets="marked"),
    UiAction("r", "rename", "Rename", "Rename the adapter", targets="row"),
    UiAction("y", "copy", "Copy", "Copy the adapter's name, sha256 or path to the clipboard", targets="row"),
    UiAction("p", "pull", "Pull", "Pull an adapter from the Hugging Face Hub (repo id and revision)", group="Hub"),
    UiAction("P", "push", "Push", "Push the adapter to a Hugging Face Hub repo", targets="row", group="Hub"),
    UiAction("u", "check_remote", "Remote", "Ask the Hub whether this adapter's remotes moved on", targets="row",
             group="Hub"),
    UiAction("a", "add", "Add", "Register an adapter folder, or every adapter under a folder (scan)",
             group="Registry"),
    UiAction("z", "undo", "Undo", "Undo the last tag, rename or delete", group="Registry"),
    UiAction("L", "lineage_parent", "Parent", "Jump to the first parent of the adapter (lineage)", targets="row",
             group="Browse"),
    UiAction("R", "resize", "Resize", "Resize the adapter: best rank-K / energy approximation, error per module",
             targets="row", group="Surgery", handler="hub.tui.screens.surgery:open_resize"),
    UiAction("f", "fix", "Fix", "Derive an adapter that vLLM / llama.cpp / Ollama / PEFT serves, with its cost",
             targets="row", group="Surgery", handler="hub.tui.screens.surgery:open_fix"),
    UiAction("X", "extract", "Extract", "Extract a LoRA from a fully fine-tuned model against this adapter's base",
             targets="row", group="Surgery", handler="hub.tui.screens.surgery:open_extract"),
    UiAction("E", "export_gguf", "GGUF", "Export the adapter as a GGUF LoRA for llama.cpp (--lora), with its base",
             targets="row", group="Formats", handler="hub.tui.screens.gguf:open_gguf_export"),
    UiAction("v", "versions", "Versions", "Versions of the adapter and their aliases: set or drop an alias",
             targets="row", group="Registry", handler="hub.tui.screens.versions:open_versions"),
    UiAction("colon", "command_mode", "Command", "Type a command by name (:tag, :sort size, :theme …)", ":",
             group="App"),
)

BY_NAME = {a.action: a for a in ACTIONS}

# keys that are not actions of their own: the help screen lists them with ACTIONS
EXTRA_BINDINGS = (
    Binding("question_mark", "help", "Help", show=False),
    Binding("S", "reverse_sort", "Reverse sort", show=False),
    Binding("delete", "delete", "Delete", show=False),
    Binding("escape", "escape", "Back / clear filter", show=False),
    Binding("f5,ctrl+r", "reload", "Reload", show=False),
    Binding("x", "clear_marks", "Clear marks", show=False),
    *(Binding(str(i), f"details_tab({i})", f"Details tab {i}", show=False) for i in range(1, 8)),
)
EXTRA_KEYS = (
    ("?", "Help (as F1)"),
    ("S", "Reverse the sort order"),
    ("x", "Clear all marks"),
    ("delete", "Delete (as d)"),
    ("f5 ctrl+r", "Reload from the registry"),
    ("1 2 3 4 5 6 7", "Details tab: Overview, Modules, Files, Findings, Lineage, Remote, Config"),
    ("enter", "Into the details tabs (left/right switch; Esc comes back)"),
    ("escape", "Clear the filter; leave a field or the details"),
    ("ctrl+p", "Command palette: every action with its key, and Theme"),
    ("ctrl+c ctrl+q", "Quit"),
)
TABLE_KEYS = (
    ("up k / down j", "Move the cursor"),
    ("pageup / pagedown", "A page up or down"),
    ("home g / end G", "First / last adapter"),
)
MOUSE = (
    ("click a row", "Move the cursor there; double-click opens the details"),
    ("click a header", "Sort by that column; again reverses"),
    ("wheel", "Scroll the table, the details or this help"),
    ("click a footer key", "Run that action"),
    ("click a tab", "Switch the details tab"),
)


def bindings() -> list[Binding]:
    ordered = sorted(ACTIONS, key=lambda a: (a.footer == 0, a.footer))
    return [Binding(a.key, a.binding_action, a.label, show=bool(a.footer), key_display=a.key_display,
                    tooltip=a.help) for a in ordered] + list(EXTRA_BINDINGS)
