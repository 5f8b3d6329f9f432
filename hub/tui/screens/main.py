"""The main screen: filter bar, adapter table, details pane, and every action."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Container
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Static

from hub.registry.adapters import ListFilter
from hub.tui.actions import bindings
from hub.tui.format import human_size
from hub.tui.jobs import run_in_thread
from hub.tui.screens.dialogs import ConfirmScreen, PromptScreen
from hub.tui.source import RegistrySource
from hub.tui.widgets.adapter_table import COLUMNS, AdapterTable
from hub.tui.widgets.details import DetailsPane, DetailsView, load_details
from hub.tui.widgets.filter_bar import FilterBar

DETAILS_DELAY = 0.12   # let typing and key repeat settle before loading a record
NEEDS_ROW = {"check", "tag", "rename", "delete", "export", "toggle_mark", "check_remote"}


def parse_tag_edit(text: str) -> tuple[list[str], list[str]]:
    """'a b -c' -> add [a, b], remove [c]."""
    add, remove = [], []
    for word in text.replace(",", " ").split():
        (remove if word.startswith("-") else add).append(word.lstrip("-+"))
    return [w for w in add if w], [w for w in remove if w]


class MainScreen(Screen):
    BINDINGS = bindings()
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (130, "-wide")]

    def __init__(self, hub) -> None:
        super().__init__(id="main")
        self.hub = hub
        self.source = RegistrySource(hub)
        self._details_timer: Timer | None = None
        self._quitting = False
        self._has_row = False
        self._index_started = False

    def compose(self) -> ComposeResult:
        yield Static("hub", id="status", markup=False)
        yield FilterBar(id="filters")
        with Container(id="body"):
            yield AdapterTable(self.source, id="adapters")
            yield DetailsPane(id="details")
        yield Footer(compact=True, show_command_palette=False)

    @property
    def table(self) -> AdapterTable:
        return self.query_one(AdapterTable)

    @property
    def details(self) -> DetailsPane:
        return self.query_one(DetailsPane)

    def on_mount(self) -> None:
        self.table.query_rows(reset=True)
        self.table.focus()

    def load_index(self) -> None:
        """Fast filters on large registries: the browse index loads behind the first paint."""
        self.source.index = None
        self._update_status()
        run_in_thread(self, self.source.load_index, lambda _n: self._update_status(), group="index",
                      exclusive=True, description="browse index")

    # -- keeping the panes in step -----------------------------------------------------

    def on_filter_bar_changed(self, event: FilterBar.Changed) -> None:
        flt = self.table.filter
        new = event.spec.to_filter(sort=flt.sort, desc=flt.desc)
        if new != flt:
            self.table.query_rows(new, reset=True)

    def on_filter_bar_done(self, _event: FilterBar.Done) -> None:
        self.table.focus()

    def on_adapter_table_changed(self, _event: AdapterTable.Changed) -> None:
        if not self._index_started:
            # after the first page is on screen, so that building it never delays first paint
            self._index_started = True
            self.load_index()
        self._update_status()
        self._bindings_follow_row()

    def _bindings_follow_row(self) -> None:
        # the footer dims row actions when no row is selected; re-rendering it costs a layout,
        # so only when that changes
        has_row = self.table.current_name is not None
        if has_row != self._has_row:
            self._has_row = has_row
            self.refresh_bindings()

    def on_adapter_table_highlighted(self, event: AdapterTable.Highlighted) -> None:
        if self._details_timer is not None:
            self._details_timer.stop()
        if event.name is None:
            self.details.clear("no adapter matches" if self.table.loaded else "")
            return
        self._details_timer = self.set_timer(DETAILS_DELAY, lambda: self.load_details(event.name))
        self._bindings_follow_row()

    def on_adapter_table_selected(self, _event: AdapterTable.Selected) -> None:
        self.query_one("#details-tabs Tabs").focus()   # left/right switch tabs, tab goes inside

    def action_details_tab(self, index: int) -> None:
        self.details.show_tab(index)

    def load_details(self, name: str) -> None:
        hub = self.hub

        def shown(view: DetailsView) -> None:
            if self.table.current_name == view.record.name:
                self.details.show(view)

        def failed(exc: BaseException) -> None:
            self.details.clear("this adapter is gone; press f5 to reload")
            self.app.report_error(exc)

        run_in_thread(self, lambda: load_details(hub, name), shown, failed, group="details", exclusive=True)

    def _update_status(self) -> None:
        t = self.table
        label = next((c.label for c in COLUMNS if c.key == t.filter.sort), t.filter.sort)
        filtered = not self.query_one(FilterBar).spec.empty
        parts = [f"hub · {t.total:,} adapter{'s' if t.total != 1 else ''}{' match' if filtered else ''}",
                 f"sorted by {label.lower()} {'▼' if t.filter.desc else '▲'}"]
        if not self.source.indexed:
            parts.append("indexing…")
        tail = "? help"
        if t.marked:
            # the marked names get what room is left, so "? help" always shows
            head = "  ·  ".join(parts) + f"  ·  {len(t.marked)} marked: "
            room = self.size.width - 2 - len(head) - len("  ·  " + tail)
            names = ", ".join(t.marked)
            if len(names) > room:
                names = names[: max(room - 1, 0)] + "…" if room > 1 else ""
            parts.append(f"{len(t.marked)} marked: {names}".rstrip(": "))
        parts.append(tail)
        self.query_one("#status", Static).update("  ·  ".join(parts), layout=False)

    def on_resize(self) -> None:
        self._update_status()

    def refresh_after(self, keep: str | None = None, changed: tuple[str, ...] = ()) -> None:
        """Bring the index up to date for ``changed`` adapters, re-query the table (cursor on
        ``keep``) and reload the details."""
        def done(_):
            self.table._announced = None  # the same name may now show different data
            self.table.query_rows(keep=keep or self.table.current_name)

        source = self.source
        run_in_thread(self, lambda: source.changed(*changed), done, group="index-refresh")

    def show_adapter(self, name: str) -> None:
        """Put the cursor on a new adapter ``name``, clearing the filter if it hides it."""
        flt = self.table.filter
        source = self.source

        def locate():
            source.changed(name)
            return source.position_of(name, flt)

        def placed(pos):
            self.table._announced = None
            if pos is None:
                self.table.query_rows(ListFilter(sort=flt.sort, desc=flt.desc), keep=name)
                self.query_one(FilterBar).clear()   # its Changed events now repeat the table's filter
            else:
                self.table.query_rows(keep=name)

        run_in_thread(self, locate, placed)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self._quitting:
            return False  # keys typed after q must not open dialogs on a closing app
        if action in NEEDS_ROW and self.table.current_name is None:
            return None   # shown dimmed in the footer
        return True

    # -- navigation actions --------------------------------------------------------------

    def action_focus_filter(self) -> None:
        self.query_one(FilterBar).focus_field("text")

    def action_escape(self) -> None:
        if isinstance(self.focused, Input):
            self.table.focus()
        elif self.maximized is not None:
            self.minimize()
            self.table.focus()
        elif self.focused is not self.table:
            self.table.focus()

    def action_toggle_mark(self) -> None:
        if self.table.toggle_mark() is not None:
            self.table.action_cursor(1)

    def action_clear_marks(self) -> None:
        self.table.marked.clear()
        self.table.refresh()
        self._update_status()

    def action_sort(self) -> None:
        self.table.next_sort()

    def action_reverse_sort(self) -> None:
        self.table.sort_by(self.table.filter.sort, desc=not self.table.filter.desc)

    def action_reload(self) -> None:
        self.load_index()
        self.refresh_after()

    def action_help(self) -> None:
        from hub.tui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen())

    def action_quit(self) -> None:
        self._quitting = True
        self.app.exit()

    # -- registry actions ---------------------------------------------------------------

    def _current(self) -> str | None:
        name = self.table.current_name
        if name is None:
            self.notify("no adapter under the cursor", severity="warning")
        return name

    def action_tag(self) -> None:
        name = self._current()
        if name is None:
            return
        row = self.table.current
        now = ", ".join(row.tags) if row and row.tags else "none"
        hub = self.hub

        def validate(text: str) -> None:
            from hub.names import check_tag

            add, remove = parse_tag_edit(text)
            for t in add:
                check_tag(t)

        def done(text: str | None) -> None:
            if not text:
                return
            add, remove = parse_tag_edit(text)
            run_in_thread(self, lambda: hub.tag(name, add=add, remove=remove),
                          lambda rec: (self.notify(f"{rec.name}: {', '.join(rec.tags) or '(no tags)'}"),
                                       self.refresh_after(keep=rec.name, changed=(rec.name,))))

        self.app.push_screen(PromptScreen(f"Tag {name}", f"Tags to add, -tag to remove (now: {now})",
                                          placeholder="e.g. prod -draft", validate=validate, ok="Apply"), done)

    def action_rename(self) -> None:
        name = self._current()
        if name is None:
            return
        hub = self.hub

        def validate(text: str) -> None:
            from hub.names import check_name

            check_name(text)

        def renamed(rec) -> None:
            self.table.forget(name, rec.name)
            self.notify(f"renamed {name} -> {rec.name}")
            self.refresh_after(keep=rec.name, changed=(name, rec.name))

        def done(new: str | None) -> None:
            if new and new != name:
                run_in_thread(self, lambda: hub.rename(name, new), renamed)

        self.app.push_screen(PromptScreen(f"Rename {name}", "New name", value=name, validate=validate,
                                          ok="Rename"), done)

    def action_delete(self) -> None:
        name = self._current()
        if name is None:
            return
        hub = self.hub

        def removed(plan) -> None:
            self.table.forget(name)
            self.notify(f"removed {name} ({human_size(plan.bytes_freed)} freed)")
            self.refresh_after(changed=(name,))

        def confirmed(yes: bool | None) -> None:
            if yes:
                run_in_thread(self, lambda: hub.remove(name), removed)

        def ask(plan) -> None:
            body = (f"Remove {name} from the registry?\n{len(plan.blobs)} store file(s), "
                    f"{human_size(plan.bytes_freed)} freed. This cannot be undone.")
            self.app.push_screen(ConfirmScreen(f"Delete {name}", body), confirmed)

        run_in_thread(self, lambda: hub.remove_plan(name), ask)

    def action_export(self) -> None:
        name = self._current()
        if name is None:
            return
        hub = self.hub
        default = str(Path.cwd() / name.replace("/", "-"))

        def done(folder: str | None) -> None:
            if folder:
                run_in_thread(self, lambda: hub.export(name, folder),
                              lambda out: self.notify(f"exported {name} to {out}"))

        self.app.push_screen(PromptScreen(f"Export {name}", "Folder to write the PEFT adapter to",
                                          value=default, ok="Export"), done)

    def on_details_pane_check_remote(self, _event: DetailsPane.CheckRemote) -> None:
        self.action_check_remote()

    def action_check_remote(self) -> None:
        name = self._current()
        if name is None:
            return
        hub = self.hub

        def checked(states) -> None:
            if not states:
                self.notify(f"{name} has no remote: push it with `hub push {name} REPO_ID`", severity="warning")
                return
            summary = ", ".join(f"{s.repo_id}@{s.revision}: {s.state}" for s in states)
            self.notify(f"{name}: {summary}")
            self.details.show_tab(6)
            self.load_details(name)

        self.notify(f"asking the Hub about {name} …")
        run_in_thread(self, lambda: hub.remote_status(name, check=True), checked, group="remote")

    # -- work that lives on its own screen ----------------------------------------------

    def action_check(self) -> None:
        name = self._current()
        if name is None:
            return
        from hub.tui.screens.check import CheckScreen

        self.app.push_screen(CheckScreen(self.hub, name))

    def action_combine(self) -> None:
        names = list(self.table.marked)
        if len(names) < 2:
            self.notify("mark two or more adapters with space, then press o", severity="warning")
            return
        from hub.tui.screens.combine import CombineScreen

        def done(new_name: str | None) -> None:
            if new_name:
                self.table.marked.clear()
                self.show_adapter(new_name)

        self.app.push_screen(CombineScreen(self.hub, names), done)

    def action_merge(self) -> None:
        names = list(self.table.marked) or ([self.table.current_name] if self.table.current_name else [])
        if not names:
            self.notify("no adapter to merge: mark some with space, or move onto one", severity="warning")
            return
        from hub.tui.screens.merge import MergeScreen

        self.app.push_screen(MergeScreen(self.hub, names))

    def action_pull(self) -> None:
        from hub.tui.screens.pull import PullScreen

        def done(new_name: str | None) -> None:
            if new_name:
                self.show_adapter(new_name)

        self.app.push_screen(PullScreen(self.hub), done)
