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

    # typing never pauses, until said below; longer than any machine's uptime, which
    # time.monotonic() counts from: before the first key nothing counts as typing, however long the pause
    monkeypatch.setattr(main, "TYPING_PAUSE", 1e12)
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


async def test_the_details_tabs_come_after_the_first_rows(registry, monkeypatch):
    """The first paint holds the table and the details pane's title only: the tabs (about 50
    widgets, half of a cold start's 0.4 s to the first rows at 100,000 adapters) are mounted when
    first needed, and what was asked of them meanwhile is done once they are in."""
    import hub.tui.screens.main as main

    monkeypatch.setattr(main, "DETAILS_DELAY", 3600.0)    # no details until asked below
    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        screen = main_screen(app)
        table, details = screen.table, screen.details
        await settle(pilot, lambda: table.settled and table.current_name is not None, what="the first rows")
        assert not details.query("#details-tabs") and not details.ready
        details.show_tab(2)                 # the Modules tab, as the key 2 asks
        details.focus_tabs()                # as enter on a row asks
        screen.load_details(table.current_name)
        await ready(pilot)
        tabs = details.query_one("#details-tabs")
        assert tabs.active == "tab-modules"
        assert app.focused is details.query_one("#details-tabs Tabs")
        modules = len(registry.get(details.current_name).modules)
        await settle(pilot, lambda: details.query_one("#d-modules").row_count == modules, what="the Modules tab")


async def test_an_empty_registry_still_shows_the_details_tabs(hub_home):
    from hub.service import Hub

    hub = Hub()
    try:
        app = create_app(hub)
        async with app.run_test(size=SIZE) as pilot:
            screen = main_screen(app)
            await settle(pilot, lambda: screen.table.settled and screen.details.ready, what="the details tabs")
            assert screen.table.total == 0 and screen.details.current_name is None
            assert screen.details.query_one("#details-tabs").active == "tab-overview"
    finally:
        hub.close()


async def test_keys_typed_ahead_go_where_they_would_have_gone_one_at_a_time(registry):
    """A paste or fast typing queues every key before the first one has taken effect: `/`, `:`
    or `t` must have focused the filter or opened its screen before the letters behind are
    delivered (hub.tui.typeahead), a slash typed in the filter is text (base ids hold one), and
    a key typed while the app starts goes to the table."""
    from textual import events
    from textual.widgets import Input

    names = {"/": "slash", ":": "colon", " ": "space", "\r": "enter"}

    def burst(app, text: str) -> None:
        for ch in text:
            app.post_message(events.Key(names.get(ch, ch), ch))

    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        screen = main_screen(app)
        burst(app, "3")                   # before the first rows: the Files tab, not the filter
        await ready(pilot)
        assert screen.filter_bar.text == "" and app.focused is screen.table
        assert screen.details.query_one("#details-tabs").active == "tab-files"
        burst(app, "/dora/x")
        await settle(pilot, lambda: screen.filter_bar.text == "dora/x", what="the burst in the filter")
        assert isinstance(app.focused, Input)
        await pilot.press("enter")
        await settle(pilot, lambda: app.focused is screen.table, what="the table")
        burst(app, "/llama")              # the earlier filter is selected: typing replaces it
        await settle(pilot, lambda: screen.filter_bar.text == "llama", what="the new filter")
        await pilot.press("escape", "escape")
        await settle(pilot, lambda: app.focused is screen.table and screen.filter_bar.text == "" and screen.table.settled,
                     what="no filter")
        burst(app, ":sort size\r")         # command mode opens, takes the command and runs it
        await settle(pilot, lambda: screen.table.filter.sort == "size" and app.screen is screen, what="the sort")
        name = screen.table.current_name
        burst(app, "tburst\r")             # the tag prompt opens and takes the tag
        await settle(pilot, lambda: "burst" in registry.get(name).tags, what="the tag")


async def test_a_key_waits_for_a_screen_opened_without_a_key(registry):
    """A screen opened by other means than a key (a click, a finished job) is still mounting
    when the next key comes: that key waits for it however long ago keys last had to wait."""
    from textual import events

    from hub.tui.screens.command import CommandScreen
    from hub.tui.typeahead import MOUNT_WAIT

    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.pause(MOUNT_WAIT + 0.1)   # no key has had to wait for that long
        app.push_screen(CommandScreen())
        app.post_message(events.Key("s", "s"))
        await settle(pilot, lambda: isinstance(app.screen, CommandScreen)
                     and app.screen.query_one("Input").value == "s", what="the key in command mode")
