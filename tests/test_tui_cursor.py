"""The cursor after a dialog created an adapter: typing a new filter must still put a row
under the cursor. `/` used to leave the old filter in the box and append to it
("llama-plain" + "gpt2" matched nothing), so every action said "no adapter under the cursor"."""

from __future__ import annotations

import pytest

from hub.tui.app import create_app

from tests.test_tui_support import anyio_backend, main_screen, ready, registry, settle  # noqa: F401

pytestmark = pytest.mark.anyio
SIZE = (100, 30)


async def type_filter(pilot, text: str) -> None:
    await pilot.press("slash", *(ch if ch != " " else "space" for ch in text), "enter")


async def test_cursor_follows_typed_filters_after_a_dialog_created_an_adapter(registry):
    from hub.tui.screens.combine import CombineScreen

    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = main_screen(app)
        table = screen.table
        await type_filter(pilot, "llama-plain")
        await ready(pilot, "llama-plain")
        await pilot.press("space")
        await type_filter(pilot, "llama-rslora")
        await ready(pilot, "llama-rslora")
        assert screen.filter_bar.text == "llama-rslora"     # typed over the earlier filter
        await pilot.press("space")
        assert list(table.marked) == ["llama-plain", "llama-rslora"]
        await pilot.press("o")
        await settle(pilot, lambda: isinstance(app.screen, CombineScreen) and app.screen.preview is not None,
                     what="the combine preview")
        app.screen.query_one("#new-name").value = "llama-rslora-mix"    # matches the filter in the box
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: app.screen is screen and table.current_name == "llama-rslora-mix",
                     what="the combined adapter under the cursor")
        await ready(pilot, "llama-rslora-mix")

        for text, expected in (("gpt2", "gpt2-attn"), ("dora", "llama-dora"), ("mix", "llama-rslora-mix")):
            await type_filter(pilot, text)
            await settle(pilot, lambda: table.settled and table.total == 1, what=f"the filter {text!r}")
            assert screen.filter_bar.text == text and table.current_name == expected
            await ready(pilot, expected)
            await pilot.press("y")     # an action on the row opens its chooser
            await settle(pilot, lambda: app.screen is not screen, what="the copy chooser")
            await pilot.press("escape")
            await settle(pilot, lambda: app.screen is screen)
        assert not any("no adapter" in n.message for n in app._notifications)

        # End after / keeps the filter to extend it
        await pilot.press("slash", "end", "space", "r", ":", "1", "6", "enter")
        await settle(pilot, lambda: table.settled and screen.filter_bar.text == "mix r:16")
        assert table.current_name == "llama-rslora-mix"
        # a filter that matches nothing: row actions are dimmed, and run by name they say why
        await type_filter(pilot, "nothing-is-called-this")
        await settle(pilot, lambda: table.settled and table.total == 0)
        assert screen.check_action("run", ("resize",)) is None
        screen.action_run("resize")
        await settle(pilot, lambda: any("matches the filter" in n.message for n in app._notifications),
                     what="the empty-filter warning")


async def test_filters_typed_while_the_index_loads_show_exact_first_rows_and_a_provisional_count(
        registry, monkeypatch):
    """The loading thread is held after its first chunk (an Event, not a delay): the filter is
    answered from that chunk, marked provisional, and made exact when the load ends."""
    import threading

    from hub.services.browsing import BrowsingService

    release = threading.Event()
    original = BrowsingService.browse_index

    def held(self, on_chunk=None, first=2_000, chunk=25_000, between=None):
        def grew(index):
            if on_chunk is not None:
                on_chunk(index)
            release.wait(60)
        return original(self, on_chunk=grew, first=2, chunk=1, between=between)

    async def until(pilot, cond, what):
        # polls without waiting for every worker: the loading one is held on purpose
        import time

        deadline = time.monotonic() + 60
        while not cond():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await pilot.pause(0.05)

    monkeypatch.setattr(BrowsingService, "browse_index", held)
    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        screen = main_screen(app)
        table = screen.table
        await until(pilot, lambda: table.settled and screen.source.index is not None, "the first chunk")
        assert not screen.source.indexed and table.total == 4      # unfiltered: SQL's exact count
        await pilot.press("slash", *"llama", "enter")
        # the first chunk holds gpt2-attn and llama-dora: one match so far, and it is the first row
        await until(pilot, lambda: table.settled and screen.filter_bar.text == "llama" and table.partial,
                    "the provisional answer")
        assert table.total == 1 and table.current_name == "llama-dora"
        status = screen.query_one("#status")
        await until(pilot, lambda: "1+ adapter match" in str(status.render()), "the provisional count")
        release.set()
        await until(pilot, lambda: screen.source.indexed and table.settled and not table.partial,
                    "the complete index")
        assert table.total == 3 and [table.row_at(i).name for i in range(3)] == [
            "llama-dora", "llama-plain", "llama-rslora"]
        await until(pilot, lambda: "3 adapters match" in str(status.render()), "the exact count")
