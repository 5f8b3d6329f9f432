"""The main screen: filter box, adapter table, details pane; it dispatches every action of
hub.tui.actions (registry changes live in hub.tui.screens.edits, jobs in their screens)."""

from __future__ import annotations

from dataclasses import replace
from time import monotonic

from textual.app import ComposeResult
from textual.containers import Container
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Static

from hub.listing.filters import ListFilter
from hub.tui import edits
from hub.tui.actions import BY_NAME, bindings
from hub.tui.jobs import run_in_thread
from hub.tui.source import TYPING_PAUSE, RegistrySource
from hub.tui.tasks import TaskManager
from hub.tui.widgets.adapter_table import SORT_LABELS, AdapterTable
from hub.tui.widgets.details import DetailsPane, DetailsView, load_details
from hub.tui.widgets.filter_bar import FilterBar

DETAILS_DELAY = 0.12   # let key repeat settle before loading a record
# While the user types a filter (until TYPING_PAUSE after a keystroke), the details pane and
# the footer wait: filling the pane or re-rendering the footer lays out the whole screen
# (30-100 ms at 120x36), which would land on the next keystroke.
IDLE_BEFORE_WARMING = 1.0   # seconds without typing before sort orders are computed ahead
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class MainScreen(Screen):
    BINDINGS = bindings()
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (130, "-wide")]
    AUTO_FOCUS = "AdapterTable"   # keys typed ahead of the first paint go to the table, not the filter box

    def __init__(self, hub, sort: str = "name", desc: bool = False, filter_text: str = "") -> None:
        super().__init__(id="main")
        self.hub = hub
        self.source = RegistrySource(hub)
        self._details_timer: Timer | None = None
        self._quitting = False
        self._has_row = False
        self._bindings_stale = False
        self._details_wanted: tuple[str | None] | None = None   # the row to show once typing pauses
        self._index_started = False
        self._initial = (sort, desc, filter_text)
        self._spin = 0
        self._warming = self._warm_busy = False

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

    @property
    def filter_bar(self) -> FilterBar:
        return self.query_one(FilterBar)

    def on_mount(self) -> None:
        sort, desc, text = self._initial
        bar = self.filter_bar
        if text:
            with bar.prevent(Input.Changed):
                bar.set_text(text)
            try:
                from hub.listing.query import parse_query

                bar.query = parse_query(text)
            except Exception:  # noqa: BLE001 - a remembered filter that no longer parses starts empty
                bar.clear()
        self._apply_query(bar.query, sort=sort, desc=desc)
        self.table.focus()
        self.set_interval(0.12, self._tick)

    class IndexGrew(Message):
        """The browse index loaded another chunk (posted from its loading thread)."""

    def load_index(self) -> None:
        """Fast filters on large registries: the browse index loads behind the first paint,
        in chunks that answer as they come (hub.tui.source)."""
        self.source.begin_load()
        self._update_status()
        source = self.source

        def loaded(_n) -> None:
            self._index_grew()
            self._warming = True

        run_in_thread(self, lambda: source.load_index(lambda: self.post_message(self.IndexGrew())), loaded,
                      group="index", exclusive=True, description="browse index")

    def on_main_screen_index_grew(self, _event: IndexGrew) -> None:
        self._index_grew()

    def _index_grew(self) -> None:
        # a provisional answer (count so far, first page still filling) is asked again
        if self.table.partial:
            self.table.query_rows(keep=self.table.current_name)
        self._update_status()

    # -- keeping the panes in step -----------------------------------------------------

    def on_filter_bar_changed(self, event: FilterBar.Changed) -> None:
        self.source.last_input = monotonic()
        self._apply_query(event.query)

    def _apply_query(self, query, sort: str | None = None, desc: bool | None = None) -> None:
        flt = self.table.filter
        sort = flt.sort if sort is None else sort
        desc = flt.desc if desc is None else desc
        self.table.highlights = query.highlights
        if query.fits:
            hub = self.hub

            def resolve():
                return query.to_filter(hub.base_id)

            run_in_thread(self, resolve, lambda f: self.table.query_rows(replace(f, sort=sort, desc=desc),
                                                                         reset=True), group="fits", exclusive=True)
            return
        new = replace(query.filter, sort=sort, desc=desc)
        if new != flt or not self.table.loaded:
            self.table.query_rows(new, reset=True)
        else:
            self.table.refresh()

    def on_filter_bar_done(self, _event: FilterBar.Done) -> None:
        self.table.focus()

    def on_adapter_table_changed(self, _event: AdapterTable.Changed) -> None:
        if not self._index_started:
            # after the first page is on screen, so that building it never delays first paint
            self._index_started = True
            self.load_index()
        if not self.table.total and not self._typing():
            self.details.build()    # no row whose details would bring the tabs: they come empty
        self._update_status()
        self._bindings_follow_row()

    def on_task_manager_changed(self, _event: TaskManager.Changed) -> None:
        self._update_status()

    def _typing(self) -> float:
        """Seconds until typing counts as paused (0 when it is)."""
        return max(0.0, self.source.last_input + TYPING_PAUSE - monotonic())

    def _tick(self) -> None:
        if not self._typing():
            if self._bindings_stale:
                self._bindings_follow_row()
            if self._details_wanted is not None:
                (name,), self._details_wanted = self._details_wanted, None
                if name is None:
                    self.details.clear()
                else:
                    self.load_details(name)
        if self._warming and monotonic() - self.source.last_input > IDLE_BEFORE_WARMING and self.table.settled \
                and not self._warm_busy:
            # idle: sort one more order ahead, so that a re-sort is a page read
            self._warm_busy = True

            def done(more: bool) -> None:
                self._warm_busy, self._warming = False, more

            run_in_thread(self, self.source.warm_next, done, lambda _e: done(False), group="index-warm")
        if self.app.tasks.running:
            self._spin += 1
            self._update_status()

    def _bindings_follow_row(self) -> None:
        # the footer dims row actions when no row is selected; re-rendering it costs a layout,
        # so only when that changes
        has_row = self.table.current_name is not None
        self._bindings_stale = has_row != self._has_row and bool(self._typing())
        if has_row != self._has_row and not self._bindings_stale:
            self._has_row = has_row
            self.refresh_bindings()

    def on_adapter_table_highlighted(self, event: AdapterTable.Highlighted) -> None:
        if self._details_timer is not None:
            self._details_timer.stop()
        name = event.name
        self._details_wanted = None
        if name is None:
            self.details.title("no adapter matches" if self.table.loaded else "")
        if self._typing():
            self._details_wanted = (name,)     # _tick shows it once typing pauses
        elif name is None:
            self.details.clear()
        else:
            self._details_timer = self.set_timer(DETAILS_DELAY, lambda: self.load_details(name))
        self._bindings_follow_row()

    def on_adapter_table_selected(self, _event: AdapterTable.Selected) -> None:
        self.details.focus_tabs()

    def action_details_tab(self, index: int) -> None:
        self.details.show_tab(index)

    def load_details(self, name: str) -> None:
        hub = self.hub

        def shown(view: DetailsView) -> None:
            if self.table.current_name == view.record.name:
                self.details.show(view)

        def failed(exc: BaseException) -> None:
            self.details.clear()
            self.details.title("this adapter is gone; press f5 to reload")
            self.app.report_error(exc)

        run_in_thread(self, lambda: load_details(hub, name), shown, failed, group="details", exclusive=True)

    def _update_status(self) -> None:
        t = self.table
        label = SORT_LABELS.get(t.filter.sort, t.filter.sort)
        filtered = not self.filter_bar.query.empty
        count = f"{t.total:,}+" if t.partial else f"{t.total:,}"    # + : still counting (indexing)
        head = f"hub · {count} adapter{'s' if t.total != 1 else ''}{' match' if filtered else ''}"
        parts = [head, f"by {label.lower()} {'▼' if t.filter.desc else '▲'}"]
        if not self.source.indexed:
            parts.append("indexing…")
        running = self.app.tasks.running
        if running:
            parts.append(f"{SPINNER[self._spin % len(SPINNER)]} {len(running)} task{'s' if len(running) > 1 else ''}")
        if t.marked:
            parts.append(f"{len(t.marked)} marked: {', '.join(t.marked)}")
        tail = "  ·  F1 help"
        room = max(self.size.width - 2 - len(tail), 0)
        text = "  ·  ".join(parts)
        if len(text) > room:   # the help hint always shows; the rest is cut
            text = text[: max(room - 1, 0)] + "…"
        self.query_one("#status", Static).update(text + tail, layout=False)

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
        """Put the cursor on adapter ``name``, clearing the filter if it hides it."""
        flt = self.table.filter
        source = self.source

        def locate():
            source.changed(name)
            return source.position_of(name, flt)

        def placed(pos):
            self.table._announced = None
            if pos is None:
                with self.filter_bar.prevent(Input.Changed):
                    self.filter_bar.clear()
                from hub.listing.query import parse_query

                self.filter_bar.query = parse_query("")
                self.table.highlights = {}
                self.table.query_rows(ListFilter(sort=flt.sort, desc=flt.desc), keep=name)
            else:
                self.table.query_rows(keep=name)

        run_in_thread(self, locate, placed)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self._quitting:
            return False  # keys typed after q must not open dialogs on a closing app
        name = parameters[0] if action == "run" and parameters else action
        spec = BY_NAME.get(name)
        if spec is not None and spec.targets and self.table.current_name is None and not (
                spec.targets == "marked" and self.table.marked):
            return None   # shown dimmed in the footer
        return True

    def targets_of(self, action: str) -> list[str]:
        """The adapters an action applies to: the marked ones (if it takes several), else the cursor's."""
        spec = BY_NAME[action]
        if spec.targets == "marked" and self.table.marked:
            return list(self.table.marked)
        name = self.table.current_name
        return [name] if name else []

    def action_run(self, action: str) -> None:
        """Actions declared with a handler (hub.tui.actions)."""
        spec = BY_NAME[action]
        names = self.targets_of(action) if spec.targets else []
        if spec.targets and not names:
            self.notify("no adapter under the cursor" if self.table.total else
                        "no adapter matches the filter (Esc clears it)", severity="warning")
            return
        spec.call(self, names)

    # -- navigation actions --------------------------------------------------------------

    def action_focus_filter(self) -> None:
        self.filter_bar.focus_field()

    def action_escape(self) -> None:
        if isinstance(self.focused, Input):
            self.table.focus()
        elif self.maximized is not None:
            self.minimize()
            self.table.focus()
        elif self.focused is not self.table:
            self.table.focus()
        elif self.filter_bar.text:
            self.filter_bar.clear()       # Esc on the table clears the filter

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

    def action_tasks(self) -> None:
        from hub.tui.screens.tasks import TasksScreen

        self.app.push_screen(TasksScreen())

    def action_command_mode(self) -> None:
        from hub.tui.screens.command import CommandScreen

        self.app.push_screen(CommandScreen(), self.run_command)

    def run_command(self, line: str | None) -> None:
        from hub.tui.screens.command import run_command

        if line:
            run_command(self, line)

    async def action_quit(self) -> None:
        self._quitting = True
        await self.app.action_quit()

    def action_lineage_parent(self) -> None:
        view = self.details.view
        if view is None or view.record.name != self.table.current_name:
            self.notify("the details are still loading", severity="warning")
            return
        parents = [p["name"] for p in view.record.lineage if p["type"] == "adapter" and p["present"]]
        if not parents:
            self.notify(f"{view.record.name} has no registered parent", severity="warning")
            return
        self.show_adapter(parents[0])

    # -- registry actions (hub.tui.edits) -----------------------------------------------

    def action_tag(self) -> None:
        edits.tag(self, self.targets_of("tag"))

    def action_rename(self) -> None:
        edits.rename(self, self.targets_of("rename"))

    def action_delete(self) -> None:
        edits.delete(self, self.targets_of("delete"))

    def action_export(self) -> None:
        edits.export(self, self.targets_of("export"))

    def action_copy(self) -> None:
        edits.copy(self, self.targets_of("copy"))

    def action_undo(self) -> None:
        edits.undo(self)

    def action_add(self) -> None:
        edits.add(self)

    def action_push(self) -> None:
        edits.push(self, self.targets_of("push"))

    def on_details_pane_check_remote(self, _event: DetailsPane.CheckRemote) -> None:
        self.action_check_remote()

    def action_check_remote(self) -> None:
        names = self.targets_of("check_remote")
        if names:
            edits.check_remote(self, names[0])

    # -- work that lives on its own screen ----------------------------------------------

    def action_check(self) -> None:
        names = self.targets_of("check")
        if not names:
            return
        from hub.tui.screens.check import CheckScreen

        self.app.push_screen(CheckScreen(self.hub, names[0]))

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
        names = self.targets_of("merge")
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
