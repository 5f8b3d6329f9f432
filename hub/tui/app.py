"""The Textual app and its factory (the CLI and the tests build it the same way)."""

from __future__ import annotations

from typing import Iterable

from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from hub.tui import settings as saved
from hub.tui.actions import ACTIONS
from hub.tui.jobs import error_line
from hub.tui.tasks import TaskManager
from hub.tui.typeahead import TypeAhead


class HubApp(App[None]):
    TITLE = "hub"
    SUB_TITLE = "LoRA adapter registry"
    CSS_PATH = ["app.tcss"]
    NOTIFICATION_TIMEOUT = 6
    BINDINGS = [
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, hub, theme: str | None = None) -> None:
        super().__init__()
        self.hub = hub
        self.settings = saved.load(hub.home)
        initial_theme = theme or self.settings.theme
        if initial_theme in self.available_themes:
            self.theme = initial_theme     # before anything is styled: no second styling pass
        self.tasks = TaskManager(self)
        self.undo = None          # hub.tui.edits.Undo: the last tag, rename or delete
        self.typeahead = TypeAhead(self, lambda key: App.on_event(self, key))

    def get_default_screen(self) -> Screen:
        # The main screen is the app's first screen, not pushed on top of a blank one from
        # on_mount: keys typed while the app starts wait for it rather than fall on the blank one.
        from hub.tui.screens.main import MainScreen

        s = self.settings
        return MainScreen(self.hub, sort=s.sort, desc=s.desc, filter_text=s.filter)

    async def on_event(self, event: events.Event) -> None:
        if not isinstance(event, events.Key):
            await super().on_event(event)
        elif not event.is_forwarded:
            await self.typeahead.handle(event)      # from the terminal: in turn (hub.tui.typeahead)
        else:
            await super().on_event(event)           # back up from the widgets: the bindings run
            self.typeahead.came_back(event)

    def on_mount(self) -> None:
        self.theme_changed_signal.subscribe(self, lambda _theme: self.remember())

    def remember(self) -> None:
        """Write theme, sort and filter to HUB_HOME/tui.json."""
        from hub.tui.screens.main import MainScreen

        main = next((s for s in self.screen_stack if isinstance(s, MainScreen)), None)
        if main is not None and main.is_mounted:
            self.settings.sort, self.settings.desc = main.table.filter.sort, main.table.filter.desc
            self.settings.filter = main.filter_bar.text
        self.settings.theme = self.theme
        saved.save(self.hub.home, self.settings)

    async def action_quit(self) -> None:
        """Quit: running jobs are cancelled (child processes terminated), settings kept."""
        self.tasks.cancel_all()
        self.remember()
        self.exit()

    def on_unmount(self) -> None:
        self.tasks.cancel_all()

    def on_task_manager_changed(self, event: TaskManager.Changed) -> None:
        for screen in self.screen_stack:
            screen.post_message(TaskManager.Changed(event.task))

    def report_error(self, exc: BaseException) -> None:
        """Errors become notifications carrying the CLI's one-line message."""
        self.notify(error_line(exc), severity="error", timeout=10, markup=False)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        from hub.tui.screens.main import MainScreen

        if isinstance(screen, MainScreen):
            for a in ACTIONS:
                if a.action == "quit":
                    continue
                yield SystemCommand(f"{a.label}  ({a.key_display or a.key})", a.help,
                                    lambda action=a.binding_action: screen.run_action(action))
        yield from super().get_system_commands(screen)


def create_app(hub=None, *, home: str | None = None, db_url: str | None = None,
               theme: str | None = None) -> HubApp:
    """A HubApp over ``hub`` (or a Hub opened on ``home`` / ``db_url``)."""
    if hub is None:
        from hub.service import Hub

        hub = Hub(home=home, db_url=db_url)
    return HubApp(hub, theme=theme)
