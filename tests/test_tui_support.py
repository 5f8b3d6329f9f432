"""Shared pieces of the TUI tests: a registry of real fixture adapters and waiting helpers.

(No tests here; the name keeps it with the other test_tui* files.)
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

# four real PEFT adapters on two real tiny bases (built once per session by `artifacts`)
FIXTURE_ADAPTERS = {
    "llama-plain": dict(base="llama", seed=101, r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]),
    "llama-rslora": dict(base="llama", seed=102, r=8, lora_alpha=16, use_rslora=True,
                         target_modules=["q_proj", "k_proj", "v_proj"]),
    "llama-dora": dict(base="llama", seed=103, r=4, lora_alpha=8, use_dora=True, target_modules=["q_proj", "o_proj"]),
    "gpt2-attn": dict(base="gpt2", seed=104, r=4, lora_alpha=8, target_modules=["c_attn", "c_proj"],
                      fan_in_fan_out=True),
}
FIXED_TIME = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def build_registry(artifacts, names=tuple(FIXTURE_ADAPTERS)):
    """A Hub on this test's HUB_HOME holding the fixture adapters, with stable sources and times
    (what the snapshots show must not depend on tmp paths or the clock)."""
    from sqlalchemy import update

    from hub.registry.schema import adapters
    from hub.service import Hub

    hub = Hub()
    for name in names:
        spec = dict(FIXTURE_ADAPTERS[name])
        base = spec.pop("base")
        folder = artifacts.adapter(base, f"tui-{name}", base_name=f"tiny-{base}", **spec)
        tags = ["fixture", "attention"] if name.startswith("gpt2") else ["fixture"]
        hub.add(folder, name=name, tags=tags, source={"kind": "local", "path": f"/fixtures/{name}"})
    with hub.db.write() as conn:
        conn.execute(update(adapters).values(created_at=FIXED_TIME, updated_at=FIXED_TIME))
    return hub


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def registry(artifacts, hub_home):
    hub = build_registry(artifacts)
    yield hub
    hub.close()


def main_screen(app):
    from hub.tui.screens.main import MainScreen

    return next(s for s in app.screen_stack if isinstance(s, MainScreen))


async def settle(pilot, until=None, timeout: float = 30.0, what: str = "the TUI") -> None:
    """Wait for workers and queued messages; with ``until``, also for that condition."""
    from textual.worker import WorkerCancelled

    deadline = time.monotonic() + timeout
    while True:
        try:
            await pilot.app.workers.wait_for_complete()
        except WorkerCancelled:   # superseded by a newer query while we waited: wait again
            continue
        await pilot.pause()
        if until is None or until():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def ready(pilot, name: str | None = None, index: bool = True) -> None:
    """Table loaded, browse index ready, details pane showing the cursor's adapter (or ``name``)."""
    screen = main_screen(pilot.app)
    await settle(pilot, lambda: screen.table.settled and (screen.source.indexed or not index) and (
        screen.table.total == 0 or screen.details.current_name == (name or screen.table.current_name)),
        what=f"details of {name or 'the cursor row'}")
