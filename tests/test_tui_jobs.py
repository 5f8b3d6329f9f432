"""Pilot tests for long jobs in `hub tui` (issue 18's bugs): progress bars that show, a pull
that a silent server cannot hold, cancellable and debounced previews, errors that name the
form's own fields, no stale results, and the task list."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from hub.tui.app import create_app
from hub.tui.tasks import Task
from tests.test_tui_support import anyio_backend, main_screen, ready, registry, settle  # noqa: F401

pytestmark = pytest.mark.anyio
SIZE = (100, 30)


class SilentServer:
    """Accepts connections and never answers (a hung Hub endpoint)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent_hub(monkeypatch):
    server = SilentServer()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_TOKEN", "hf_silent")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield server
    server.close()


async def poll(pilot, until, timeout: float = 30.0, what: str = "the TUI") -> None:
    """Wait for a condition without waiting for workers (a hung pull's worker never ends)."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        await pilot.pause(0.05)


async def _start_pull(pilot, repo: str):
    from hub.tui.screens.pull import PullScreen

    app = pilot.app
    await pilot.press("p")
    await poll(pilot, lambda: isinstance(app.screen, PullScreen))
    form = app.screen
    form.query_one("#pull-repo").value = repo
    form.start()
    await poll(pilot, lambda: form.job is not None and form.job.process is not None)
    return form, form.job


async def test_a_pull_from_a_silent_server_is_cancelled_and_quitting_ends_it(registry, silent_hub):
    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        form, task = await _start_pull(pilot, "alice/hangs")
        proc = task.process
        # the child really is stuck in the server: connected, no answer
        await poll(pilot, lambda: silent_hub.accepted, what="the pull to connect")
        assert task.running and proc.poll() is None
        await pilot.press("escape")               # Esc cancels a running pull (it used to say "wait")
        await poll(pilot, lambda: task.state == "cancelled", timeout=60,
                   what=lambda: f"the pull to stop ({task}, stop={task.stop.is_set()}, poll={proc.poll()}, "
                                f"screen={app.screen}, focused={app.focused})")
        assert proc.poll() is not None
        assert "cancelled" in str(form.query_one("#pull-status").render())
        assert registry.count() == 4

        # a second one, left running: quitting ends it with the app
        await pilot.press("escape")
        await poll(pilot, lambda: app.screen is main_screen(app))
        form, task = await _start_pull(pilot, "alice/hangs-too")
        proc = task.process
        await poll(pilot, lambda: len(silent_hub.accepted) >= 2, what="the second pull to connect")
        started = time.monotonic()
        await pilot.press("ctrl+c")
    quit_took = time.monotonic() - started
    assert proc.poll() is not None
    assert task.stop.is_set()       # cancelled by the quit (the app was gone before it could say so)
    assert quit_took < 30    # generous bound: it hung for minutes before; the figure is in the notes


async def test_progress_bar_has_room_while_a_merge_runs(registry, artifacts, tmp_path):
    """The bar used to get zero height (padding on a height-1 widget). The real merge runs;
    its progress callback is held after the first report until the bar has been measured."""
    from textual.widgets import ProgressBar
    from textual.widgets._progress_bar import Bar

    from hub.tui.screens.merge import MergeScreen

    gate, measured = threading.Event(), {}
    real_merge = registry.merge

    def gated_merge(*args, progress=None, **kwargs):
        def held(done, total, item="", *rest):
            progress(done, total, item, *rest)
            if done > 0 and not gate.is_set():
                gate.wait(20)
        return real_merge(*args, progress=held if progress else None, **kwargs)

    registry.merge = gated_merge
    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, "gpt2-attn")
        await pilot.press("m")
        await settle(pilot, lambda: isinstance(app.screen, MergeScreen))
        form = app.screen
        form.query_one("#merge-base").value = str(artifacts.base("gpt2"))
        form.query_one("#merge-out").value = str(tmp_path / "merged")
        form.action_plan()
        await settle(pilot, lambda: form.plan is not None, what="the plan")
        form.action_merge()
        bar = form.query_one("#merge-progress", ProgressBar)
        # poll, not settle: settle waits for workers, and this one is held until measured
        await poll(pilot, lambda: form.job is not None and form.job.done > 0 and bar.progress > 0,
                   what="the first progress report")
        await pilot.pause()
        measured.update(bar=bar.region, inner=bar.query_one(Bar).region, progress=bar.progress,
                        display=bar.display)
        gate.set()
        await settle(pilot, lambda: form.result is not None, what="the merge")
        assert measured["display"] and measured["bar"].height == 1 and measured["bar"].width > 20
        assert measured["inner"].width > 10 and measured["progress"] > 0
        # a finished merge uses its plan up: the button is off and ctrl+s plans again
        assert form.plan is None and form.query_one("#merge-go").disabled
        await pilot.press("ctrl+s")
        # it planned (and the plan says the folder now exists, in the form's words), it did not merge
        await settle(pilot, lambda: "exists" in str(form.query_one("#merge-plan").render()), what="a fresh plan")
        shown = str(form.query_one("#merge-plan").render())
        assert "--overwrite" not in shown and '"overwrite"' in shown
        assert form.job is None and len(app.tasks.tasks) == 1


async def test_combine_preview_is_debounced_cancelled_when_superseded_and_ignores_the_name(registry, monkeypatch):
    from hub.tui.screens import combine as combine_screen
    from hub.tui.screens.combine import CombineScreen

    started: list[str] = []
    cancelled: list[str] = []
    held = threading.Event()       # the 0.5 preview has started and waits at its first module
    release = threading.Event()    # the test lets it go on once a newer edit has superseded it
    real = registry.combine

    def watched(parents, method, name, *args, dry_run=False, progress=None, **kwargs):
        if not dry_run:
            return real(parents, method, name, *args, progress=progress, **kwargs)
        started.append(repr(parents))
        hold = parents[1][1] == 0.5

        def slow(*a):
            if hold:
                held.set()
                release.wait(30)
            try:
                progress(*a)
            except BaseException:
                cancelled.append(repr(parents))
                raise
        return real(parents, method, name, *args, dry_run=True, progress=slow, **kwargs)

    registry.combine = watched
    # the debounce delay longer than any gap between two keystrokes on a loaded CI machine,
    # so "one preview for six keystrokes" does not depend on the machine's speed
    monkeypatch.setattr(combine_screen, "PREVIEW_DELAY", 2.0)
    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        main_screen(app).table.marked = {"llama-plain": None, "llama-rslora": None}
        await pilot.press("o")
        await settle(pilot, lambda: isinstance(app.screen, CombineScreen) and app.screen.preview is not None,
                     what="the first preview")
        form = app.screen
        assert form.previews_started == 1
        # typing the name never re-runs it
        form.query_one("#new-name").focus()
        for ch in "abcdef":
            await pilot.press(ch)
        await pilot.pause(2.5)
        await settle(pilot)
        assert form.previews_started == 1 and form.preview is not None
        # six quick weight keystrokes: one preview for the last value (debounced)
        form.query_one("#weight-0").focus()
        await pilot.press("ctrl+a", "shift+end")
        for ch in "0.2575":
            await pilot.press(ch)
        await settle(pilot, lambda: form.preview is not None, what="the preview after typing")
        assert form.previews_started == 2
        assert form.preview.recipe["parents"][0]["weight"] == 0.2575
        # an edit while a preview runs cancels it (it stops at its next module)
        monkeypatch.setattr(combine_screen, "PREVIEW_DELAY", 0.05)
        form.query_one("#weight-1").value = "0.5"
        # (no settle here: it waits for workers, and the held preview is one)
        await poll(pilot, held.is_set, what="the 0.5 preview to start")
        assert form.previews_started == 3
        form.query_one("#weight-1").value = "0.25"
        await poll(pilot, lambda: form.previews_started == 4, what="the 0.25 preview to start")
        release.set()
        await settle(pilot, lambda: form.preview is not None and
                     form.preview.recipe["parents"][1]["weight"] == 0.25, what="the newest preview")
        assert cancelled, "the superseded preview kept running"
        # Combine reuses the preview's result: no second computation
        form.query_one("#new-name").value = "mix"
        done_before = len(started)
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: app.screen is main_screen(app), what="the combine")
        assert registry.get("mix").recipe["parents"][1]["weight"] == 0.25
        assert len(started) == done_before


async def test_results_never_outlive_their_inputs(registry, artifacts):
    """Check: a failed check clears the old findings. Combine: switching method or ticking
    "drop DoRA" replaces the findings and errors at once."""
    from hub.tui.screens.check import CheckScreen
    from hub.tui.screens.combine import CombineScreen

    app = create_app(registry)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, "gpt2-attn")
        await pilot.press("c")
        await settle(pilot, lambda: isinstance(app.screen, CheckScreen))
        check = app.screen
        check.query_one("#check-base").value = str(artifacts.base("llama"))
        check.run_check()
        await settle(pilot, lambda: check.report is not None and not check.report.compatible)
        assert "error" in str(check.query_one("#check-findings").render())
        check.query_one("#check-base").value = "/no/such/base"
        check.run_check()
        await settle(pilot, lambda: "hub: error" in str(check.query_one("#check-verdict").render()))
        assert str(check.query_one("#check-findings").render()).strip() == ""
        await pilot.press("escape")

        main_screen(app).table.marked = {"llama-dora": None, "llama-plain": None}
        await pilot.press("o")
        await settle(pilot, lambda: isinstance(app.screen, CombineScreen) and
                     "DoRA" in str(app.screen.query_one("#preview").render()), what="the DoRA refusal")
        form = app.screen
        form.query_one("#drop-dora").value = True
        await pilot.pause()                   # the Changed message, well inside the preview's delay
        # at once: the refusal is gone before the new preview arrives
        assert "DoRA" not in str(form.query_one("#preview").render()) and form.findings == []
        await settle(pilot, lambda: form.preview is not None, what="the preview without DoRA")
        assert "error" not in str(form.query_one("#preview-findings").render())
        form.query_one("#method").value = "svd"
        await pilot.pause()
        assert form.preview is None and str(form.query_one("#preview-findings").render()).strip() == ""


async def test_modules_to_save_adapters_combine_from_the_form(artifacts, hub_home):
    """The refusal used to name --drop-modules-to-save, which the form did not have."""
    from hub.service import Hub
    from hub.tui.screens.combine import CombineScreen

    hub = Hub()
    hub.add(artifacts["modules_to_save"][1], name="mts")
    hub.add(artifacts["plain"][1], name="plain")
    app = create_app(hub)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        main_screen(app).table.marked = {"mts": None, "plain": None}
        await pilot.press("o")
        await settle(pilot, lambda: isinstance(app.screen, CombineScreen) and app.screen._ticket > 0 and
                     "modules_to_save" in str(app.screen.query_one("#preview").render()), what="the refusal")
        form = app.screen
        shown = str(form.query_one("#preview").render())
        assert "--drop-modules-to-save" not in shown and '"drop modules_to_save"' in shown
        assert form.query_one("#drop-mts").display
        form.query_one("#drop-mts").value = True
        await settle(pilot, lambda: form.preview is not None, what="the preview")
        form.query_one("#new-name").value = "mts-mix"
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: app.screen is main_screen(app), what="the combine")
        assert hub.get("mts-mix").modules_to_save == []
    hub.close()


async def test_task_list_runs_several_jobs_cancels_one_and_notifies(registry, tmp_path):
    from hub.tui.screens.tasks import TasksScreen, TaskRow

    app = create_app(registry)
    release = threading.Event()
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)

        def waits(progress):
            for i in range(400):
                progress(i, 400, f"step {i}")
                if release.wait(0.05):
                    break
            return {"message": "finished"}

        first = app.tasks.start("slow one", waits)
        second = app.tasks.start("slow two", waits)
        # poll, not settle: settle would wait for these jobs to end
        await poll(pilot, lambda: first.done > 0 and second.done > 0)
        await pilot.press("T")
        await poll(pilot, lambda: isinstance(app.screen, TasksScreen) and len(app.screen.query(TaskRow)) == 2)
        await poll(pilot, lambda: list(app.screen.query(TaskRow))[0].has_focus, what="focus on the first row")
        rows = list(app.screen.query(TaskRow))
        assert rows[0].job is second          # newest first
        assert "running" in str(rows[0].query_one(".task-state").render())
        await pilot.press("x")
        await poll(pilot, lambda: second.state == "cancelled")
        assert first.running
        release.set()
        await settle(pilot, lambda: first.state == "done")
        messages = [n.message for n in app._notifications]
        assert "slow one: finished" in messages and "slow two: cancelled" in messages
        assert isinstance(first, Task) and first.message == "finished"
