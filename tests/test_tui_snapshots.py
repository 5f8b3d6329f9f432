"""SVG snapshots of `hub tui` (pytest-textual-snapshot): the main screen (dark, and light at
80×24), the details pane and the combine form, on fixed fixture adapters. Regenerate after
a deliberate UI change with `pytest tests/test_tui_snapshots.py --snapshot-update`."""

from __future__ import annotations

from hub.tui.app import create_app
from tests.test_tui_support import build_registry, main_screen, ready, settle


def test_main_screen(snap_compare, artifacts, hub_home):
    app = create_app(build_registry(artifacts))

    async def run_before(pilot):
        await ready(pilot)

    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)


def test_main_screen_light_80x24_with_marks_and_filter(snap_compare, artifacts, hub_home):
    app = create_app(build_registry(artifacts), theme="textual-light")

    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("slash", "l", "l", "a", "m", "a", "enter")
        await settle(pilot, lambda: main_screen(pilot.app).table.total == 3)
        await pilot.press("space", "space")
        await ready(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_details_pane_modules(snap_compare, artifacts, hub_home):
    app = create_app(build_registry(artifacts))

    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("end")
        await ready(pilot, "llama-rslora")
        await pilot.press("2")            # Modules tab: the per-module rank table
        await settle(pilot)

    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)


def test_combine_form(snap_compare, artifacts, hub_home):
    from hub.tui.screens.combine import CombineScreen

    app = create_app(build_registry(artifacts))

    async def run_before(pilot):
        await ready(pilot)
        main_screen(pilot.app).table.marked = {"llama-plain": None, "llama-rslora": None}
        await pilot.press("o")
        await settle(pilot, lambda: isinstance(pilot.app.screen, CombineScreen) and
                     pilot.app.screen.preview is not None, what="the combine preview")
        pilot.app.screen.set_focus(None)  # no blinking cursor in the picture

    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)
