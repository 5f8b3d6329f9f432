"""Pilot tests of the welcome items of issue 18: `:` command mode, add and scan (`a`), push
(`P`, to the fake Hub server through the real huggingface_hub client) and the jump to a
lineage parent (`L`). (Undo is in test_tui_actions.py.) Each waits for conditions, never
for time."""

from __future__ import annotations

import hashlib
import shutil

import pytest

from hub.tui.app import create_app

from tests.test_tui_support import anyio_backend, main_screen, ready, registry, settle  # noqa: F401

pytestmark = pytest.mark.anyio
SIZE = (110, 34)


async def select(pilot, name: str) -> None:
    await pilot.press("slash", *name, "enter")
    await ready(pilot, name)


def last_task(app, title_start: str):
    found = [t for t in app.tasks.tasks if t.title.startswith(title_start)]
    return found[-1] if found else None


async def test_command_mode_runs_actions_sorts_filters_and_completes(registry):
    from hub.tui.screens.command import CommandScreen
    from hub.tui.screens.dialogs import PromptScreen

    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = main_screen(app)
        table = screen.table

        async def command(*keys: str) -> None:
            await pilot.press("colon")
            await settle(pilot, lambda: isinstance(app.screen, CommandScreen), what="the command line")
            await pilot.press(*keys)

        await command(*"sort size desc", "enter")
        await settle(pilot, lambda: app.screen is screen and table.settled and table.filter.sort == "size")
        assert table.filter.desc
        sizes = [table.row_at(i).size_bytes for i in range(table.total)]
        assert sizes == sorted(sizes, reverse=True)

        # the hint shows each command's key; Tab completes
        await command(*"vers")
        hint = str(app.screen.query_one("#command-hint").render())
        assert "versions (v)" in hint
        await pilot.press("tab")
        assert app.screen.query_one("#command-input").value == "versions"
        await pilot.press("escape")
        await settle(pilot, lambda: app.screen is screen)

        await command(*"filter dora", "enter")
        await settle(pilot, lambda: table.settled and table.total == 1)
        assert screen.filter_bar.text == "dora" and table.current_name == "llama-dora"

        await command(*"nonsense", "enter")
        await settle(pilot, lambda: any("no command 'nonsense'" in n.message for n in app._notifications))

        await command(*"tag", "enter")      # an action by name: its dialog, for the cursor's adapter
        await settle(pilot, lambda: isinstance(app.screen, PromptScreen), what="the tag prompt")
        assert "llama-dora" in app.screen.title_text
        await pilot.press("escape")


async def test_add_one_folder_and_scan_a_tree(registry, artifacts, tmp_path):
    from hub.tui.screens.dialogs import PromptScreen

    one = artifacts.adapter("llama", "tui-add-one", seed=301, r=4, lora_alpha=8, target_modules=["q_proj"])
    tree = tmp_path / "loras"
    for i, seed in enumerate((302, 303)):
        src = artifacts.adapter("llama", f"tui-scan-{i}", seed=seed, r=2, lora_alpha=4, target_modules=["v_proj"])
        shutil.copytree(src, tree / "team" / f"scanned-{i}")
    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = main_screen(app)
        await pilot.press("a")
        await settle(pilot, lambda: isinstance(app.screen, PromptScreen), what="the add prompt")
        app.screen.query_one("#prompt-input").value = str(one)
        await pilot.press("enter")
        await settle(pilot, lambda: (t := last_task(app, "add")) is not None and t.state != "running",
                     timeout=120, what="the add task")
        assert last_task(app, "add").state == "done", last_task(app, "add").message
        added = registry.get(one.name)             # named after its folder, as `hub add` does
        assert added.r == 4 and added.sha256
        await settle(pilot, lambda: screen.table.current_name == one.name, what="the cursor on it")

        # scan: a child process registers every adapter under the folder
        await pilot.press("a")
        await settle(pilot, lambda: isinstance(app.screen, PromptScreen), what="the add prompt")
        app.screen.query_one("#prompt-input").value = str(tree)
        app.screen.query_one("#prompt-check").value = True
        await pilot.press("enter")
        await settle(pilot, lambda: (t := last_task(app, "scan")) is not None and t.state != "running",
                     timeout=180, what="the scan task")
        task = last_task(app, "scan")
        assert task.state == "done" and "added 2" in task.message, task.message
        names = {r.name for r in registry.list()}
        assert {"scanned-0", "scanned-1"} <= names and registry.count() == 7
        await settle(pilot, lambda: screen.table.settled and screen.table.total == 7, what="the table")


async def test_push_uploads_the_adapter_to_the_hub(registry, artifacts, hub_online):
    from huggingface_hub import HfApi, hf_hub_download

    from hub.tui.screens.dialogs import PromptScreen
    from tests.hubserver.fixture import ensure_model

    base_id = ensure_model(hub_online, "tiny-org/tiny-llama",
                           {"config.json": (artifacts.base("llama") / "config.json").read_bytes()})
    repo_id = hub_online.repo_id("tui-push")
    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await select(pilot, "llama-plain")

        async def push(base_model: str):
            await pilot.press("P")
            await settle(pilot, lambda: isinstance(app.screen, PromptScreen), what="the push prompt")
            app.screen.query_one("#prompt-input").value = repo_id
            app.screen.query_one("#prompt-second").value = base_model
            count = len(app.tasks.tasks)
            app.screen.query_one("#ok").press()
            await settle(pilot, lambda: len(app.tasks.tasks) > count and app.tasks.tasks[-1].state != "running",
                         timeout=180, what="the push task")
            return app.tasks.tasks[-1]

        # the Hub refuses a card whose base it does not host; the line names the form's field
        task = await push("")
        assert task.state == "failed" and "base_model" in task.message and "--base-model" in task.message
        assert not registry.get("llama-plain").remotes
        task = await push(base_id)
        assert task.state == "done", task.message
    api = HfApi(endpoint=hub_online.url, token=hub_online.token)
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= set(api.list_repo_files(repo_id))
    got = hf_hub_download(repo_id, "adapter_model.safetensors", endpoint=hub_online.url, token=hub_online.token)
    stored = registry.adapter_dir("llama-plain") / "adapter_model.safetensors"
    assert hashlib.sha256(open(got, "rb").read()).hexdigest() == hashlib.sha256(stored.read_bytes()).hexdigest()
    assert registry.get("llama-plain").remotes[0]["repo_id"] == repo_id


async def test_lineage_jump_goes_to_the_parent_even_when_the_filter_hides_it(registry):
    registry.combine([("llama-rslora", 1.0), ("llama-plain", 0.5)], "cat", "kid")
    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = main_screen(app)
        await select(pilot, "kid")
        await pilot.press("L")
        await settle(pilot, lambda: screen.table.current_name == "llama-rslora", what="the parent")
        assert screen.filter_bar.text == ""       # "kid" hid the parent: the filter was cleared
        await ready(pilot, "llama-rslora")
        await pilot.press("L")                    # a root: says so, stays
        await settle(pilot, lambda: any("has no registered parent" in n.message for n in app._notifications))
        assert screen.table.current_name == "llama-rslora"
