"""Pilot tests of the TUI's GGUF export (`E`) and versions/aliases (`v`) on the cursor's
adapter, with real artifacts: the GGUF file is read back with the gguf library llama.cpp
ships, and the aliases through the registry (`hub versions`)."""

from __future__ import annotations

import pytest

from hub.tui.app import create_app

from tests.test_tui_support import anyio_backend, main_screen, ready, registry, settle  # noqa: F401

pytestmark = pytest.mark.anyio
SIZE = (110, 34)


async def select(pilot, name: str) -> None:
    await pilot.press("slash", *name, "enter")
    await ready(pilot, name)


async def test_gguf_export_writes_a_llama_cpp_lora_file(registry, artifacts, tmp_path):
    from tests.gguf_support import gguf_fields, gguf_tensors
    from tests.helpers import run_cli

    from hub.tui.screens.gguf import GgufExportScreen

    registry.add_base(artifacts.base("llama"), name="tiny-llama")
    out = tmp_path / "plain.gguf"
    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = main_screen(app)
        await select(pilot, "llama-plain")
        await pilot.press("E")
        await settle(pilot, lambda: isinstance(app.screen, GgufExportScreen), what="the GGUF form")
        form = app.screen
        form.query_one("#gguf-path").value = str(out)
        form.query_one("#gguf-outtype").value = "f16"
        form.query_one("#ok").press()
        await settle(pilot, lambda: app.screen is screen and app.tasks.tasks and
                     app.tasks.tasks[-1].state in ("done", "failed"), timeout=120, what="the export task")
        task = app.tasks.tasks[-1]
        assert task.state == "done", task.message
        assert str(out) in task.message

    fields = gguf_fields(out)
    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora"
    assert fields["general.architecture"] == "llama" and fields["adapter.lora.alpha"] == 16
    tensors = gguf_tensors(out)
    rec = registry.get("llama-plain")
    # a lora_a and a lora_b per adapted module, in f16 as asked
    assert len(tensors) == 2 * len(rec.modules)
    assert {kind for kind, _ in tensors.values()} == {"F16"}
    assert all(n.startswith("blk.") and n.endswith((".lora_a", ".lora_b")) for n in tensors)
    # the same file the CLI writes
    cli_out = tmp_path / "cli.gguf"
    assert run_cli("export", "llama-plain", cli_out, "--format", "gguf", "--outtype", "f16").exit_code == 0
    assert cli_out.read_bytes() == out.read_bytes()


async def test_gguf_export_refusal_shows_the_cli_line_and_writes_nothing(registry, artifacts, tmp_path):
    from hub.tui.screens.gguf import GgufExportScreen

    registry.add_base(artifacts.base("llama"), name="tiny-llama")
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "dora.gguf"
    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = main_screen(app)
        await select(pilot, "llama-dora")
        await pilot.press("E")
        await settle(pilot, lambda: isinstance(app.screen, GgufExportScreen), what="the GGUF form")
        app.screen.query_one("#gguf-path").value = str(out)
        app.screen.query_one("#ok").press()
        await settle(pilot, lambda: app.screen is screen and app.tasks.tasks and
                     app.tasks.tasks[-1].state in ("done", "failed"), timeout=120, what="the export task")
        task = app.tasks.tasks[-1]
        assert task.state == "failed" and "LLAMACPP_DORA" in task.message and "--" not in task.message.split(
            "LLAMACPP_DORA")[0]
        assert not list(out.parent.iterdir())   # no file, no temporary left


async def test_versions_list_and_aliases_set_and_dropped(registry, artifacts):
    from hub.tui.screens.versions import VersionsScreen

    second = artifacts.adapter("llama", "tui-plain-v2", seed=202, r=8, lora_alpha=16,
                               target_modules=["q_proj", "v_proj"])
    registry.add(second, name="llama-plain", new_version=True)
    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = main_screen(app)
        await select(pilot, "llama-plain")
        await pilot.press("v")
        await settle(pilot, lambda: isinstance(app.screen, VersionsScreen) and app.screen.finished,
                     what="the versions")
        dialog = app.screen
        table = dialog.query_one("#versions")
        assert [v.version for v in dialog.versions] == [1, 2] and table.row_count == 2
        assert [v.sha256 for v in dialog.versions] == [v.sha256 for v in registry.versions("llama-plain")]

        async def press(button: str, alias: str, version: str = "") -> None:
            before = dialog.finished
            dialog.query_one("#alias-name").value = alias
            dialog.query_one("#alias-version").value = version
            dialog.query_one(f"#{button}").press()
            await settle(pilot, lambda: dialog.finished > before, what=f"{button} {alias}")

        await press("set-alias", "prod", "1")
        assert registry.get("llama-plain@prod").version == 1
        assert "prod" in str(table.get_row_at(0)[3])
        # a hostile alias: the CLI's line, nothing changed
        await press("set-alias", "bad alias\x1b[31m", "2")
        status = str(dialog.query_one("#versions-status").render())
        assert "alias" in status and "\x1b" not in status
        assert [v.aliases for v in registry.versions("llama-plain")] == [["prod"], []]
        # the selected row when no version is typed
        table.move_cursor(row=1)
        await press("set-alias", "next")
        assert registry.get("llama-plain@next").version == 2
        await press("drop-alias", "prod")
        assert [v.aliases for v in registry.versions("llama-plain")] == [[], ["next"]]
        await pilot.press("escape")
        await settle(pilot, lambda: app.screen is screen)
        await ready(pilot, "llama-plain")
