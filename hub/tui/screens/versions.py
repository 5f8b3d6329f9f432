"""`v` versions and aliases of the cursor's adapter (`hub versions NAME`, `hub alias`): every
version with its sha256, date, aliases and tags; set an alias on a version, or drop one."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, Static

from hub.tui.format import inert
from hub.tui.jobs import error_line, run_in_thread


class VersionsScreen(ModalScreen[bool]):
    """Dismisses with True when an alias changed (the main screen then refreshes)."""

    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, hub, name: str) -> None:
        super().__init__(classes="dialog-screen")
        self.hub, self.adapter = hub, name
        self.versions: list = []
        self.changed = False
        self.finished = 0          # loads and alias changes that ended: what tests wait for

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog check-dialog"):
            yield Label(f"Versions of {self.adapter}", classes="dialog-title", markup=False)
            yield DataTable(id="versions", cursor_type="row", zebra_stripes=True)
            with Horizontal(classes="form-row"):
                yield Label("Alias", classes="form-label")
                yield Input(placeholder="e.g. prod", id="alias-name", compact=True)
            with Horizontal(classes="form-row"):
                yield Label("Version", classes="form-label")
                yield Input(placeholder="number or ref (default: the selected row)", id="alias-version",
                            compact=True)
            yield Static("", id="versions-status")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Set alias", id="set-alias", variant="primary")
                yield Button("Drop alias", id="drop-alias")
                yield Button("Close", id="close")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("Version", "sha256", "Created", "Aliases", "Tags", "")
        self._load()

    def _load(self, message: str = "") -> None:
        hub, name = self.hub, self.adapter
        run_in_thread(self, lambda: hub.versions(name), lambda v: self._show(v, message), self._failed,
                      group="versions", exclusive=True)

    def _show(self, versions, message: str) -> None:
        self.versions = versions
        table = self.query_one(DataTable)
        table.clear()
        for v in versions:
            table.add_row(f"v{v.version}", v.sha256[:12], v.created_at[:19], inert(", ".join(v.aliases)),
                          inert(", ".join(v.tags)), "latest" if v.latest else "", key=str(v.version))
        self.query_one("#versions-status", Static).update(Content(message or f"{len(versions)} version(s)"))
        self.finished += 1

    def _failed(self, exc: BaseException) -> None:
        self.query_one("#versions-status", Static).update(Content.assemble((error_line(exc), "$text-error")))
        self.finished += 1

    def _selected_version(self) -> str | None:
        typed = self.query_one("#alias-version", Input).value.strip()
        if typed:
            return typed
        table = self.query_one(DataTable)
        if not self.versions or table.cursor_row is None:
            return None
        return str(self.versions[min(table.cursor_row, len(self.versions) - 1)].version)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "close":
            self.action_close()
            return
        alias = self.query_one("#alias-name", Input).value.strip()
        if not alias:
            self._failed(ValueError("type the alias first"))
            return
        hub, name = self.hub, self.adapter
        if event.button.id == "set-alias":
            version = self._selected_version()

            def run():
                return hub.alias(name, alias, version)

            def done(v) -> None:
                self.changed = True
                self._load(f"{name}@{alias} -> v{v.version}")
        else:
            def run():
                return hub.alias(name, alias, remove=True)

            def done(_v) -> None:
                self.changed = True
                self._load(f"dropped {name}@{alias}")
        run_in_thread(self, run, done, self._failed, group="alias", exclusive=True)

    def action_close(self) -> None:
        self.dismiss(self.changed)


def open_versions(screen, names: list[str]) -> None:
    if not names:
        return
    name = names[0]

    def done(changed: bool | None) -> None:
        if changed:
            screen.refresh_after(keep=name, changed=(name,))

    screen.app.push_screen(VersionsScreen(screen.hub, name), done)
