"""SVG snapshots of `hub tui` (pytest-textual-snapshot): the main screen at 120×40, 80×24 and
60×20 (the footer's main keys must show at each), with a filter and marks, the details pane,
the combine form, help and the task list, on fixed fixture adapters. Regenerate after a
deliberate UI change with `pytest tests/test_tui_snapshots.py --snapshot-update` and look at them."""

from __future__ import annotations

import pytest

from hub.tui.app import create_app
from tests.test_tui_support import build_registry, main_screen, ready, settle

FOOTER_KEYS = ("Help", "Find", "Sort", "Quit")


def _footer_text(app) -> str:
    from textual.widgets import Footer

    footer = main_screen(app).query_one(Footer)
    return " ".join(str(k.render()) for k in footer.query("FooterKey") if k.region.right <= app.size.width
                    and k.region.width > 0)


@pytest.mark.parametrize("size", [(120, 40), (80, 24), (60, 20)], ids=["120x40", "80x24", "60x20"])
def test_main_screen(snap_compare, artifacts, hub_home, size):
    app = create_app(build_registry(artifacts))
    shown = {}

    async def run_before(pilot):
        await ready(pilot)
        shown["footer"] = _footer_text(pilot.app)
        shown["status"] = str(main_screen(pilot.app).query_one("#status").render())

    assert snap_compare(app, terminal_size=size, run_before=run_before)
    for key in FOOTER_KEYS:
        assert key in shown["footer"], (size, shown["footer"])
    assert shown["status"].rstrip().endswith("F1 help")


def test_main_screen_light_80x24_with_marks_and_filter(snap_compare, artifacts, hub_home):
    app = create_app(build_registry(artifacts), theme="textual-light")

    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("slash", "l", "l", "a", "m", "a", "space", "r", ":", "8", "enter")
        await settle(pilot, lambda: main_screen(pilot.app).table.total == 2)
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

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


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


def test_help_screen_80x24(snap_compare, artifacts, hub_home):
    from hub.tui.screens.help import HelpScreen

    app = create_app(build_registry(artifacts))

    async def run_before(pilot):
        await ready(pilot)
        await pilot.press("f1")
        await settle(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
