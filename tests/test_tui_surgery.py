"""Pilot tests of the TUI's resize / fix / extract actions on the selected adapter: the report
is shown and the registry holds the new adapter (or nothing, when nothing changed)."""

from __future__ import annotations

import pytest

from hub.tui.app import create_app

from tests.test_tui_support import anyio_backend, main_screen, ready, registry, settle  # noqa: F401

pytestmark = pytest.mark.anyio
SIZE = (100, 30)


async def select(pilot, name: str) -> None:
    await pilot.press("slash")
    for ch in name:
        await pilot.press(ch)
    await pilot.press("enter")
    await ready(pilot, name)


async def open_action(pilot, key: str, operation: str):
    from hub.tui.screens.surgery import SurgeryScreen

    app = pilot.app
    await pilot.press(key)
    await settle(pilot, lambda: isinstance(app.screen, SurgeryScreen) and app.screen.operation == operation,
                 what=f"the {operation} dialog")
    return app.screen


async def run_form(pilot, dialog, **values) -> None:
    for key, value in values.items():
        dialog.query_one(f"#sg-{key}").value = str(value)
    before = dialog.finished
    dialog.query_one("#sg-go").press()
    # the run's end, not its first progress line (which a loaded machine shows long before)
    await settle(pilot, lambda: dialog.finished > before, timeout=120, what="the report")


async def test_resize_fix_extract_show_the_report_and_register(registry, artifacts, tmp_path):
    from hub.demo.factory import make_tuned

    base = artifacts.base("llama")
    tuned = make_tuned(base, tmp_path / "tuned", rank=2, noise=1e-3, seed=3)
    registry.add_base(base, name="tiny-llama")
    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = main_screen(app)
        await select(pilot, "llama-plain")

        dialog = await open_action(pilot, "R", "resize")
        await run_form(pilot, dialog, rank=2)
        assert dialog.created == "llama-plain-r2" and registry.get("llama-plain-r2").r == 2
        report = dialog.query_one("#sg-report")
        assert report.row_count == len(registry.get("llama-plain").modules)
        assert "total relative error" in str(dialog.query_one("#sg-status").render())
        await pilot.press("escape")
        await settle(pilot, lambda: app.screen is screen)
        await ready(pilot, "llama-plain-r2")       # the main screen moved to the new adapter

        # in the same session: `/` types a new filter over the one left from the last dialog
        await select(pilot, "llama-dora")
        dialog = await open_action(pilot, "f", "fix")
        await run_form(pilot, dialog, runtime="vllm")          # the registered base is found by shapes
        assert dialog.created == "llama-dora-vllm" and not registry.get("llama-dora-vllm").use_dora
        assert "vllm serve" in str(dialog.query_one("#sg-status").render())
        assert registry.check_runtime("llama-dora-vllm", "vllm").compatible
        await pilot.press("escape")
        await settle(pilot, lambda: app.screen is screen)
        await ready(pilot, "llama-dora-vllm")

        await select(pilot, "llama-dora")
        dialog = await open_action(pilot, "X", "extract")
        await run_form(pilot, dialog, tuned=tuned, rank=2, new="ft")
        assert dialog.created == "ft", str(dialog.query_one("#sg-status").render())
        assert registry.get("ft").recipe["operation"] == "extract"
        await pilot.press("escape")


async def test_bad_input_shows_the_cli_line_and_registers_nothing(registry):
    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, "llama-plain")
        before = registry.count()
        dialog = await open_action(pilot, "f", "fix")
        await run_form(pilot, dialog, runtime="vllm", max_rank=7)
        assert "not a value vLLM accepts" in str(dialog.query_one("#sg-status").render())
        assert dialog.created is None and registry.count() == before
