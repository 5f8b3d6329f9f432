"""Pilot tests for the main screen's actions on the registry: bulk tag/delete/export on marked
adapters (the confirmation names what depends on them), undo, copy, remembered settings,
inert untrusted text, and the footer and header at narrow widths."""

from __future__ import annotations

import hashlib

import pytest

from hub.tui.app import create_app
from tests.test_tui_support import anyio_backend, main_screen, ready, registry, settle  # noqa: F401

pytestmark = pytest.mark.anyio
SIZE = (100, 30)


async def test_bulk_tag_delete_export_name_dependents_and_undo(registry, tmp_path):
    from hub.tui.screens.dialogs import ConfirmScreen

    registry.combine([("llama-plain", 1.0), ("llama-rslora", 0.5)], "cat", "child")
    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = main_screen(app)
        screen.table.marked = {"llama-plain": None, "llama-dora": None}
        # tag both
        await pilot.press("t")
        app.screen.query_one("#prompt-input").value = "bulk -fixture"
        await pilot.press("enter")
        await settle(pilot, lambda: registry.get("llama-dora").tags == ["bulk"] and
                     registry.get("llama-plain").tags == ["bulk"])
        assert registry.get("gpt2-attn").tags == ["attention", "fixture"]     # unmarked: untouched
        # undo gives each its own tags back
        await pilot.press("z")
        await settle(pilot, lambda: registry.get("llama-dora").tags == ["fixture"] and
                     registry.get("llama-plain").tags == ["fixture"])
        # export both: one folder each, the registered bytes
        await pilot.press("e")
        app.screen.query_one("#prompt-input").value = str(tmp_path / "out")
        await pilot.press("enter")
        await settle(pilot, lambda: all((tmp_path / "out" / n / "adapter_config.json").exists()
                                        for n in ("llama-plain", "llama-dora")), what="the exports")
        for name in ("llama-plain", "llama-dora"):
            for f in registry.get(name).files:
                assert hashlib.sha256((tmp_path / "out" / name / f["name"]).read_bytes()).hexdigest() == f["sha256"]
        # delete both: the confirmation names the combined child
        await pilot.press("d")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        body = app.screen.body
        assert "llama-plain is a parent of: adapter child" in body and "llama-dora" in body
        await pilot.press("y")
        await settle(pilot, lambda: registry.count() == 3 and screen.table.total == 3)
        assert {e.name for e in registry.trash_list()} == {"llama-plain", "llama-dora"}
        assert not screen.table.marked
        # undo brings both back from the trash, lineage relinked
        await pilot.press("z")
        await settle(pilot, lambda: registry.count() == 5 and screen.table.total == 5)
        assert registry.trash_list() == []
        assert registry.get("child").lineage[0]["present"] is True


async def test_copy_name_sha256_and_path(registry):
    from hub.tui.screens.dialogs import ChoiceScreen

    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, "gpt2-attn")
        rec = registry.get("gpt2-attn")
        for key, expected in (("n", rec.name), ("s", rec.sha256)):
            await pilot.press("y")
            await settle(pilot, lambda: isinstance(app.screen, ChoiceScreen))
            await pilot.press(key)
            await settle(pilot, lambda: app.clipboard == expected, what=f"copy {key}")
        await pilot.press("y")
        await settle(pilot, lambda: isinstance(app.screen, ChoiceScreen))
        await pilot.press("p")
        await settle(pilot, lambda: app.clipboard.endswith(rec.sha256), what="the path")
        assert (registry.adapter_dir("gpt2-attn") / "adapter_config.json").exists()


async def test_theme_sort_and_filter_are_remembered_in_hub_home(registry, hub_home):
    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        app.theme = "textual-light"
        screen = main_screen(app)
        screen.table.sort_by("size", desc=True)
        screen.filter_bar.set_text("llama r:8")
        await settle(pilot, lambda: screen.table.total == 2 and screen.table.filter.sort == "size")
        await pilot.press("q")
    assert (hub_home / "tui.json").exists()
    again = create_app(registry)
    async with again.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = main_screen(again)
        assert again.theme == "textual-light"
        assert (screen.table.filter.sort, screen.table.filter.desc) == ("size", True)
        assert screen.filter_bar.text == "llama r:8" and screen.table.total == 2
    # a broken file means defaults, not a crash
    (hub_home / "tui.json").write_text("{not json")
    third = create_app(registry)
    async with third.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert main_screen(third).table.filter.sort == "name"


async def test_untrusted_text_renders_inert(artifacts, hub_home):
    """A base_model with an escape sequence and Rich markup shows as plain text."""
    import json
    import shutil

    from hub.service import Hub

    folder = hub_home.parent / "hostile"
    shutil.copytree(artifacts["plain"][1], folder)
    cfg = json.loads((folder / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "[bold red]evil[/]\x1b[2J\x07/model"
    (folder / "adapter_config.json").write_text(json.dumps(cfg))
    hub = Hub()
    hub.add(folder, name="hostile")
    app = create_app(hub)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot, "hostile")
        screen = main_screen(app)
        line = "".join(seg.text for seg in screen.table.render_line(1))
        assert "\x1b" not in line and "\x07" not in line
        assert "\\x1b[2J\\x07" in line          # shown as text (the org part is dropped when narrow)
        overview = str(screen.query_one("#d-overview").render())
        assert "[bold red]evil[/]\\x1b[2J\\x07/model" in overview and "\x1b" not in overview
    hub.close()


async def test_narrow_widths_keep_the_main_keys_and_the_alpha_arrow(registry):
    from textual.widgets import Footer

    for width, height in ((120, 40), (80, 24), (60, 20)):
        app = create_app(registry)
        async with app.run_test(size=(width, height)) as pilot:
            await ready(pilot)
            screen = main_screen(app)
            keys = [k for k in screen.query_one(Footer).query("FooterKey") if 0 < k.region.right <= width]
            labels = " ".join(str(k.render()) for k in keys)
            for label in ("Help", "Find", "Sort", "Quit"):
                assert label in labels, (width, labels)
            assert str(screen.query_one("#status").render()).rstrip().endswith("F1 help")
            screen.table.sort_by("alpha")
            await settle(pilot, lambda: screen.table.filter.sort == "alpha")
            header = "".join(seg.text for seg in screen.table.render_line(0))
            if any(c.key == "alpha" for c, _ in screen.table._layout()):
                assert "Alpha ▲" in header
            # a burst of keys after / all land in the filter box
            await pilot.press("slash", "l", "l", "a", "m", "a", "space", "r", ":", "8")
            await settle(pilot)
            assert screen.filter_bar.text == "llama r:8"
            assert app.focused is screen.filter_bar.input
            await pilot.press("escape")           # clears
            assert screen.filter_bar.text == ""
