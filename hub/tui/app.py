"""The Textual app and its factory (the CLI and the tests build it the same way)."""

from __future__ import annotations

from typing import Iterable

from textual.app import App, SystemCommand
from textual.screen import Screen

from hub.tui.actions import ACTIONS
from hub.tui.jobs import error_line


class HubApp(App[None]):
    TITLE = "hub"
    SUB_TITLE = "LoRA adapter registry"
    CSS_PATH = ["app.tcss"]
    NOTIFICATION_TIMEOUT = 6

    def __init__(self, hub, theme: str | None = None) -> None:
        super().__init__()
        self.hub = hub
        self._initial_theme = theme

    def on_mount(self) -> None:
        from hub.tui.screens.main import MainScreen

        if self._initial_theme:
            self.theme = self._initial_theme
        self.push_screen(MainScreen(self.hub))

    def report_error(self, exc: BaseException) -> None:
        """Errors become notifications carrying the CLI's one-line message."""
        self.notify(error_line(exc), severity="error", timeout=10, markup=False)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        from hub.tui.screens.main import MainScreen

        if isinstance(screen, MainScreen):
            for a in ACTIONS:
                if a.action == "quit":
                    continue
                yield SystemCommand(a.label, a.help, lambda action=a.action: screen.run_action(action))
        yield from super().get_system_commands(screen)


def create_app(hub=None, *, home: str | None = None, db_url: str | None = None,
               theme: str | None = None) -> HubApp:
    """A HubApp over ``hub`` (or a Hub opened on ``home`` / ``db_url``)."""
    if hub is None:
        from hub.service import Hub

        hub = Hub(home=home, db_url=db_url)
    return HubApp(hub, theme=theme)
