"""Pilot tests: drive `hub tui` with keys and clicks on a registry of real fixture adapters and
assert on what the registry holds afterwards, not only on widgets."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from hub.errors import AlreadyExists, NotFound
from hub.listing.filters import ListFilter
from hub.listing.query import parse_query
from hub.tui.app import create_app
from hub.tui.widgets.adapter_table import AdapterTable

from tests.test_tui_support import anyio_backend, main_screen, ready, registry, settle  # noqa: F401

pytestmark = pytest.mark.anyio
SIZE = (100, 30)


def rows_in_table(table: AdapterTable) -> list:
    return [table.row_at(i) for i in range(table.total)]


def names_in_table(table: AdapterTable) -> list[str]:
    return [table.row_at(i).name for i in range(table.total)]


async def type_text(pilot, text: str) -> None:
    for ch in text:
        await pilot.press(ch if ch != " " else "space")


async def test_browse_filter_sort_and_details(registry):
    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = main_screen(app)
        table = screen.table
        assert table.total == registry.count() == 4
        assert names_in_table(table) == [r.name for r in registry.list()]
        assert rows_in_table(table) == registry.browsing.list_rows(ListFilter(), sources=False)

        # the filter language, applied as you type: plain words match names (and targets)
        await pilot.press("slash")
        await type_text(pilot, "dora")
        await settle(pilot, lambda: table.total == 1)
        assert names_in_table(table) == ["llama-dora"]
        assert table.highlights["name"] == ("dora",)
        await pilot.press("enter")          # back to the table
        await ready(pilot, "llama-dora")
        rec = registry.get("llama-dora")
        assert app.focused is table

        # the details pane shows the record: modules, files, findings, lineage
        details = screen.details
        assert details.view.record == rec
        # the tables fill when their tab is shown (not for every record the cursor passes)
        assert details.query_one("#d-modules").row_count == 0
        details.show_tab(2)
        await settle(pilot, lambda: details.query_one("#d-modules").row_count == len(rec.modules), what="modules")
        details.show_tab(3)
        files = details.query_one("#d-files")
        await settle(pilot, lambda: files.row_count == len(rec.files), what="files")
        details.show_tab(1)
        assert {str(files.get_row_at(i)[2]) for i in range(files.row_count)} == {f["sha256"] for f in rec.files}

        # key:value terms combine, as `hub list QUERY` does (the same parser)
        bar = screen.filter_bar
        for text in ("r:8", "r:8 target:k_proj", "tag:attention", "base:tiny-llama", "base:llama -flag:dora"):
            bar.set_text(text)
            expected = [r.name for r in registry.list(parse_query(text).filter)]
            await settle(pilot, lambda: table.settled and names_in_table(table) == expected, what=text)
        # a term that does not parse says why and keeps the last good filter
        bar.set_text("r:x")
        await settle(pilot)
        assert "r:x is not a number" in str(screen.query_one("#filter-problem").render())
        assert names_in_table(table) == expected
        # Esc clears the filter (from the table, or in the box)
        await pilot.press("escape")
        await settle(pilot, lambda: table.total == 4 and bar.text == "")

        # clicking a column header sorts by it; clicking again reverses
        x = next(pos for pos in range(100) if (c := table.column_at(pos)) is not None and c.key == "size")
        await pilot.click(AdapterTable, offset=(x, 0))
        await settle(pilot, lambda: table.filter.sort == "size")
        by_size = sorted(registry.list(), key=lambda r: (r.size_bytes, r.name))
        assert names_in_table(table) == [r.name for r in by_size]
        await pilot.click(AdapterTable, offset=(x, 0))
        await settle(pilot, lambda: table.filter.desc)
        assert names_in_table(table) == [r.name for r in sorted(by_size, key=lambda r: -r.size_bytes)]
        # `s` moves to the next column; after a re-sort the cursor is on the first row
        await pilot.press("end")
        await pilot.press("s")
        await settle(pilot, lambda: table.filter.sort == "tags" and table.settled and table.cursor == 0)
        # then beyond the columns: by date and by parameters
        await pilot.press("s")
        await settle(pilot, lambda: table.filter.sort == "created" and table.settled)
        await pilot.press("s")
        await settle(pilot, lambda: table.filter.sort == "params" and table.settled)
        by_params = sorted(registry.list(), key=lambda r: (r.param_count, r.name))
        assert names_in_table(table) == [r.name for r in by_params]


async def test_tag_rename_export_delete_change_the_registry(registry, tmp_path):
    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = main_screen(app)
        table = screen.table
        assert table.current_name == "gpt2-attn"

        # tag: add two, remove one
        await pilot.press("t")
        await type_text(pilot, "prod nlp -fixture")
        await pilot.press("enter")
        await settle(pilot, lambda: registry.get("gpt2-attn").tags == ["attention", "nlp", "prod"])
        await ready(pilot, "gpt2-attn")
        assert table.current.tags == ("attention", "nlp", "prod")

        # rename keeps the cursor (and any mark) on the adapter
        await pilot.press("space", "up")     # mark it (space moves down; come back)
        await pilot.press("r")
        await type_text(pilot, "gpt2-renamed")
        await pilot.press("enter")
        await settle(pilot, lambda: table.current_name == "gpt2-renamed",
                     what=f"rename ({[n.message for n in app._notifications]}, {app.screen})")
        assert registry.get("gpt2-renamed").tags == ["attention", "nlp", "prod"]
        with pytest.raises(NotFound):
            registry.get("gpt2-attn")
        assert list(table.marked) == ["gpt2-renamed"]

        # export writes a PEFT folder with the registered bytes
        out = tmp_path / "exported"
        await pilot.press("e")
        prompt = app.screen.query_one("#prompt-input")
        prompt.value = str(out)
        await pilot.press("enter")
        await settle(pilot, lambda: (out / "adapter_config.json").exists())
        rec = registry.get("gpt2-renamed")
        for f in rec.files:
            assert hashlib.sha256((out / f["name"]).read_bytes()).hexdigest() == f["sha256"]

        # delete asks first; "n" keeps it, "y" removes it
        await pilot.press("d")
        await settle(pilot, lambda: app.screen is not screen)
        await pilot.press("n")
        await settle(pilot)
        assert registry.get("gpt2-renamed")
        await pilot.press("d")
        await settle(pilot, lambda: app.screen is not screen)
        await pilot.press("y")
        await settle(pilot, lambda: table.total == 3)
        assert registry.count() == 3
        with pytest.raises(NotFound):
            registry.get("gpt2-renamed")
        assert not table.marked
        assert table.current_name in {r.name for r in registry.list()}


async def test_errors_show_the_cli_line_and_change_nothing(registry):
    from hub.error_lines import render_error

    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        table = main_screen(app).table
        assert table.current_name == "gpt2-attn"
        await pilot.press("r")
        app.screen.query_one("#prompt-input").value = "llama-plain"
        await pilot.press("enter")
        expected = render_error(AlreadyExists("the name 'llama-plain' is already taken", None,
                                              "choose another name"))[0]
        await settle(pilot, lambda: any(n.message == expected for n in app._notifications))
        assert registry.get("gpt2-attn") and registry.count() == 4

        # an invalid name never reaches the service: the dialog says why and stays open
        await pilot.press("r")
        app.screen.query_one("#prompt-input").value = "bad name!"
        await pilot.press("enter")
        await settle(pilot)
        assert "invalid name" in str(app.screen.query_one("#prompt-error").render())
        await pilot.press("escape")
        assert [r.name for r in registry.list()] == sorted(["gpt2-attn", "llama-dora", "llama-plain", "llama-rslora"])


async def test_help_lists_every_key_and_scrolls_and_ctrl_c_quits(registry):
    from hub.tui.actions import ACTIONS, EXTRA_BINDINGS, MOUSE
    from hub.tui.screens.help import HelpScreen, help_content
    from hub.tui.widgets.adapter_table import AdapterTable

    app = create_app(registry)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("f1")
        await settle(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = help_content().plain
        for a in ACTIONS:                                    # every action, with its key
            assert a.help in text and ("space" if a.key == "space" else a.key_display or a.key) in text
        for b in EXTRA_BINDINGS:                             # every other key of the main screen
            assert b.key.split(",")[0].replace("question_mark", "?") in text or b.description in text
        for b in AdapterTable.BINDINGS:
            assert b.description.lower() in text.lower() or b.key.split(",")[0] in text
        for what, _ in MOUSE:                                # and the mouse
            assert what in text
        assert "base:" in text and "flag:" in text and "saves-mods (mts)" in text
        # it scrolls with j/k (at 80x24 it does not fit)
        scroller = app.screen.scroller
        assert scroller.max_scroll_y > 0
        await pilot.press("j", "j", "j")
        await settle(pilot, lambda: scroller.scroll_y == 3)
        await pilot.press("k")
        await settle(pilot, lambda: scroller.scroll_y == 2)
        await pilot.press("G")
        await settle(pilot, lambda: scroller.scroll_y == scroller.max_scroll_y)
        await pilot.press("escape")
        await settle(pilot, lambda: not isinstance(app.screen, HelpScreen))
        await pilot.press("question_mark")                   # ? opens it too
        await settle(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        # the palette shows each command with its key
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {f"{a.label}  ({a.key_display or a.key})" for a in ACTIONS if a.action != "quit"} <= titles
        footer_keys = [b.action for b in main_screen(app).BINDINGS if b.show]
        assert footer_keys[:4] == ["help", "focus_filter", "sort", "quit"]   # what narrow footers keep
        await pilot.press("ctrl+c")
    assert app.return_code == 0


async def test_table_pages_through_sql_until_the_index_is_ready(registry, monkeypatch):
    """With a page size of 2 (and no browse index) the table must fetch pages as the cursor
    moves, and still agree with the service row for row."""
    from hub.tui.source import RegistrySource
    from hub.tui.widgets import adapter_table

    monkeypatch.setattr(adapter_table, "PAGE_SIZE", 2)
    monkeypatch.setattr(RegistrySource, "load_index", lambda self: 0)
    calls = []
    real = registry.browsing.list_rows

    def counting(flt, **kw):
        calls.append((flt.limit, flt.offset))
        return real(flt, **kw)

    monkeypatch.setattr(registry.browsing, "list_rows", counting)
    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, index=False)
        table = main_screen(app).table
        assert all(limit == 2 for limit, _ in calls)
        await pilot.press("end")
        await ready(pilot, "llama-rslora", index=False)
        assert (2, 2) in calls
        assert names_in_table(table) == [r.name for r in real(ListFilter())]


async def test_the_browse_index_follows_changes_made_in_the_tui(registry):
    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = main_screen(app)
        await settle(pilot, lambda: screen.source.indexed, what="the browse index")
        index = screen.source.index
        assert index.list_rows(ListFilter()) == registry.browsing.list_rows(ListFilter())
        await pilot.press("t")
        await type_text(pilot, "indexed")
        await pilot.press("enter")
        await settle(pilot, lambda: "indexed" in registry.get("gpt2-attn").tags)
        await settle(pilot, lambda: screen.table.settled and screen.table.current.tags == ("attention", "fixture",
                                                                                               "indexed"))
        flt = ListFilter(tags=("indexed",))
        assert index.list_rows(flt, sources=False) == registry.browsing.list_rows(flt, sources=False) == [screen.table.current]


def test_hub_tui_does_not_import_torch():
    code = ("import sys; from hub.cli import cli, load_commands; load_commands(); "
            "import hub.tui.app, hub.tui.screens.main, hub.tui.screens.check, hub.tui.screens.combine, "
            "hub.tui.screens.merge, hub.tui.screens.pull, hub.tui.source; "
            "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- check, combine, pull, merge: the work screens ------------------------------------------


async def test_check_against_a_base_lists_findings_and_stores_the_verdict(registry, artifacts):
    from hub.tui.screens.check import CheckScreen

    registry.add_base(artifacts.base("llama"), name="tiny-llama")
    gpt2 = str(artifacts.base("gpt2"))
    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = main_screen(app)
        await pilot.press("slash")
        await type_text(pilot, "llama-plain")
        await pilot.press("enter")
        await ready(pilot, "llama-plain")

        await pilot.press("c")
        await settle(pilot, lambda: isinstance(app.screen, CheckScreen) and
                     app.screen.query_one("#check-base").value == "tiny-llama", what="the check dialog")
        check = app.screen
        await pilot.press("enter")           # the registered base is suggested; Enter checks
        await settle(pilot, lambda: check.report is not None)
        expected = registry.check("llama-plain", "tiny-llama")
        assert check.report.compatible and check.report.findings == expected.findings
        assert "compatible" in str(check.query_one("#check-verdict").render())
        # the verdict is stored: `hub list --fits tiny-llama` finds it
        fits = registry.list(ListFilter(fits=registry.base_id("tiny-llama")))
        assert "llama-plain" in [r.name for r in fits]

        # a model folder of another architecture: not compatible, errors listed
        check.query_one("#check-base").value = gpt2
        check.query_one("#check-base").focus()
        await pilot.press("enter")
        await settle(pilot, lambda: check.report is not None and not check.report.compatible)
        expected = registry.check("llama-plain", gpt2)
        assert [f.code for f in check.report.findings] == [f.code for f in expected.findings]
        shown = str(check.query_one("#check-findings").render())
        for f in expected.findings:
            assert f.code in shown and f.severity in shown
        await pilot.press("escape")
        await settle(pilot, lambda: app.screen is screen)


async def test_combine_marked_adapters_previews_then_registers_the_result(registry):
    from hub.tui.screens.combine import CombineScreen

    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = main_screen(app)
        table = screen.table
        # nothing marked: a hint, no screen
        await pilot.press("o")
        await settle(pilot)
        assert not isinstance(app.screen, CombineScreen)

        for name in ("llama-plain", "llama-rslora"):
            await pilot.press("slash")
            screen.filter_bar.set_text(name)
            await pilot.press("enter")
            await ready(pilot, name)
            await pilot.press("space")
        screen.filter_bar.set_text("")
        assert list(table.marked) == ["llama-plain", "llama-rslora"]

        await pilot.press("o")
        await settle(pilot, lambda: isinstance(app.screen, CombineScreen) and app.screen.preview is not None,
                     what="the combine preview")
        form = app.screen
        # the preview is the service's dry run and its compatibility findings
        dry = registry.combine([("llama-plain", 1.0), ("llama-rslora", 1.0)], "cat", form.read_form().name,
                               dry_run=True)
        assert form.preview.summary["rank_max"] == dry.summary["rank_max"] == 16
        expected = registry.check_combination(["llama-plain", "llama-rslora"], "cat")
        assert {f["code"] for f in form.findings} == {f.code for f in dry.findings} and \
            {f.code for f in dry.findings} <= {f.code for f in expected.findings}
        assert "resulting rank" in str(form.query_one("#preview").render())

        # weights and name typed into the form
        form.query_one("#weight-0").focus()
        await pilot.press("ctrl+a", "shift+end")
        await type_text(pilot, "0.7")
        form.query_one("#weight-1").value = "0.3"
        form.query_one("#new-name").value = "tui-mix"
        await settle(pilot, lambda: form.preview is not None and form.read_form().name == "tui-mix")
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: app.screen is screen and table.current_name == "tui-mix",
                     what="the combined adapter under the cursor")
        rec = registry.get("tui-mix")
        assert [(p["name"], p["weight"]) for p in rec.lineage] == [("llama-plain", 0.7), ("llama-rslora", 0.3)]
        assert rec.recipe["method"] == "cat" and rec.r == 16
        assert not table.marked
        await ready(pilot, "tui-mix")
        assert screen.details.view.record.lineage == rec.lineage


async def test_combine_refusal_is_shown_and_registers_nothing(registry):
    from hub.tui.screens.combine import CombineScreen

    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        table = main_screen(app).table
        table.marked = {"llama-dora": None, "llama-plain": None}
        await pilot.press("o")
        await settle(pilot, lambda: isinstance(app.screen, CombineScreen) and app.screen._ticket > 0 and
                     "DoRA" in str(app.screen.query_one("#preview").render()), what="the DoRA refusal")
        form = app.screen
        assert form.preview is None and form.query_one("#drop-dora").display
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: any("DoRA" in n.message for n in app._notifications))
        assert registry.count() == 4
        # opting in to dropping the magnitudes makes it a plain LoRA combination
        form.query_one("#drop-dora").value = True
        await settle(pilot, lambda: form.preview is not None, what="the preview with --drop-dora")
        assert any("DoRA" in n for n in form.preview.summary["notes"])


async def test_pull_from_the_hub_registers_and_shows_the_adapter(registry, artifacts, hub_online):
    from huggingface_hub import HfApi

    from hub.tui.screens.pull import PullScreen

    repo_id = hub_online.repo_id("tui")
    api = HfApi(endpoint=hub_online.url, token=hub_online.token)
    api.create_repo(repo_id)
    api.upload_folder(repo_id=repo_id, folder_path=artifacts["embedding"][1], commit_message="adapter",
                      allow_patterns=["adapter_config.json", "adapter_model.safetensors"])

    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = main_screen(app)
        await pilot.press("p")
        await settle(pilot, lambda: isinstance(app.screen, PullScreen))
        await type_text(pilot, repo_id)
        app.screen.query_one("#pull-revision").value = "main"
        app.screen.query_one("#pull-name").value = "pulled-embedding"
        app.screen.query_one("#pull-repo").focus()
        await pilot.press("enter")
        try:
            await settle(pilot, lambda: app.screen is screen and screen.table.current_name == "pulled-embedding",
                         what="the pulled adapter")
        except AssertionError:
            raise AssertionError([n.message for n in app._notifications], [t.message for t in app.tasks.tasks]) \
                from None
        rec = registry.get("pulled-embedding")
        pull_screen = [n for n in app._notifications if n.message.startswith("pulled pulled-embedding")]
        assert pull_screen, [n.message for n in app._notifications]
        assert rec.source["repo"] == repo_id and rec.source["revision"] == "main"
        assert rec.remotes and rec.remotes[0]["repo_id"] == repo_id
        await ready(pilot, "pulled-embedding")
        assert repo_id in str(screen.query_one("#d-remote").render())
        # remote status: ask the Hub; the answer is stored and shown
        await pilot.press("u")
        await settle(pilot, lambda: registry.get("pulled-embedding").remotes[0]["checked_at"] is not None and
                     "up to date" in str(screen.query_one("#d-remote").render()), what="the remote status")

        # a repo that does not exist: the CLI's line, nothing registered
        await pilot.press("p")
        await settle(pilot, lambda: isinstance(app.screen, PullScreen))
        app.screen.query_one("#pull-repo").value = "alice/does-not-exist"
        await pilot.press("enter")
        await settle(pilot, lambda: any(n.message.startswith("hub: error:") for n in app._notifications))
        assert registry.count() == 5


async def test_merge_shows_the_plan_then_writes_and_records_the_model(registry, artifacts, tmp_path):
    from hub.tui.screens.merge import MergeScreen

    base = str(artifacts.base("llama"))
    out = tmp_path / "merged"
    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = main_screen(app)
        screen.table.marked = {"llama-plain": None, "llama-rslora": None}
        await pilot.press("m")
        await settle(pilot, lambda: isinstance(app.screen, MergeScreen))
        form = app.screen
        form.query_one("#merge-base").value = base
        form.query_one("#merge-out").value = str(out)
        form.query_one("#merge-weight-1").value = "0.5"
        await pilot.press("ctrl+s")           # the first ctrl+s only shows the plan
        await settle(pilot, lambda: form.plan is not None, what="the merge plan")
        assert not out.exists()
        form.plan = None
        await pilot.click("#merge-plan-go")   # so does the Plan button
        await settle(pilot, lambda: form.plan is not None, what="the merge plan")
        expected = registry.merge(base, [("llama-plain", 1.0), ("llama-rslora", 0.5)], out, dry_run=True).plan
        assert form.plan["tensors_touched"] == expected["tensors_touched"] > 0
        assert "tensors change" in str(form.query_one("#merge-plan").render())
        assert not out.exists()               # a plan writes nothing

        await pilot.press("ctrl+s")
        await settle(pilot, lambda: form.result is not None, what="the merge")
        model = registry.get_model(form.result.record.name)
        assert [(p["name"], p["weight"]) for p in model.adapters] == [("llama-plain", 1.0), ("llama-rslora", 0.5)]
        assert (out / "config.json").exists() and list(out.glob("*.safetensors"))


async def test_merge_can_be_cancelled_and_leaves_nothing(registry, artifacts, tmp_path):
    from hub.tui.screens.merge import MergeScreen

    out = tmp_path / "merged"
    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, "gpt2-attn")
        await pilot.press("m")
        await settle(pilot, lambda: isinstance(app.screen, MergeScreen))
        form = app.screen
        form.query_one("#merge-base").value = str(artifacts.base("gpt2"))
        form.query_one("#merge-out").value = str(out)
        form.action_plan()
        await settle(pilot, lambda: form.plan is not None, what="the merge plan")
        form.action_merge()
        form.action_cancel()                  # before its first tensor is written
        await settle(pilot, lambda: not form.busy, what="the cancelled merge to stop")
        assert form.result is None
        assert "cancelled" in str(form.query_one("#merge-status").render())
        assert sorted(p.name for p in tmp_path.iterdir()) == ["hub-home"]   # no output, no temp folder
        assert registry.list_models() == []
        await pilot.press("escape")
        await settle(pilot, lambda: app.screen is main_screen(app))
