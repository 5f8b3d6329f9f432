"""Typing in the filter box costs a query and a repaint, nothing more: no layout of the screen,
no details pane and no footer rebuild until typing pauses. Each of those lays out the whole
screen (30-100 ms at 120x36), which landed on the next keystroke (benchmarks/tui at 100,000
adapters)."""

from __future__ import annotations

import pytest

from hub.listing.query import parse_query
from hub.tui.app import create_app

from tests.test_tui_support import anyio_backend, main_screen, ready, registry, settle  # noqa: F401

pytestmark = pytest.mark.anyio
SIZE = (100, 30)


async def test_typing_a_filter_lays_out_nothing_until_typing_pauses(registry, monkeypatch):
    import hub.tui.screens.main as main
    from textual.screen import Screen

    monkeypatch.setattr(main, "TYPING_PAUSE", 3600.0)     # typing never pauses, until said below
    layouts: list[str] = []
    lay_out = Screen._refresh_layout

    def counted(screen, *args, **kwargs):
        layouts.append(type(screen).__name__)
        return lay_out(screen, *args, **kwargs)

    monkeypatch.setattr(Screen, "_refresh_layout", counted)
    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = main_screen(app)
        table, details = screen.table, screen.details
        shown = details.current_name
        await pilot.press("slash")
        await settle(pilot)
        layouts.clear()
        text = ""
        for key, typed in (("l", "l"), ("l", "ll"), ("backspace", "l"), ("l", "ll"), ("a", "lla"), ("m", "llam"),
                           ("backspace", "lla"), ("m", "llam"), ("a", "llama"), ("-", "llama-"),
                           ("d", "llama-d"), ("x", "llama-dx"), ("backspace", "llama-d")):
            await pilot.press(key)
            text = typed
            expected = registry.browsing.count_matching(parse_query(text).filter)
            await settle(pilot, lambda: screen.filter_bar.text == text and table.settled
                         and table.total == expected, what=f"the filter {text!r}")
            # the scrollbar follows the count although nothing was laid out
            assert table.vertical_scrollbar.window_virtual_size == table.total + 1 == table.virtual_size.height
            if text == "llama-dx":
                assert table.total == 0 and str(details.query_one("#details-title").render()) == "no adapter matches"
                assert screen._bindings_stale and screen._has_row     # the footer waits too
        assert layouts == [], layouts
        assert table.current_name == "llama-dora" != shown
        assert details.current_name == shown       # the pane waits for typing to pause
        assert not screen._bindings_stale          # a row again: the footer had nothing to redo

        monkeypatch.setattr(main, "TYPING_PAUSE", 0.0)
        await pilot.press("backspace")             # "llama-": a pause from here on
        await settle(pilot, lambda: table.settled and screen.filter_bar.text == "llama-")
        await ready(pilot)
        await settle(pilot, lambda: not screen._bindings_stale, what="the footer's bindings")
        assert details.current_name == table.current_name is not None
        assert screen._has_row
