"""Progress bars on stderr that stay quiet when stderr is not a terminal."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager

import click


@contextmanager
def progress_bar(label: str, total: int | None = None, unit: str = "items"):
    """Yields update(done, total, item) -> None, compatible with service Progress callbacks."""
    if not sys.stderr.isatty():
        yield lambda done, total_, item="": None
        return
    state = {"bar": None, "last": 0}

    def update(done, total_, item=""):
        if state["bar"] is None:
            state["bar"] = click.progressbar(length=total_ or 1, label=label, file=sys.stderr,
                                             show_pos=unit == "items", show_percent=True, show_eta=True,
                                             item_show_func=lambda _: _short(item))
            state["bar"].__enter__()
        bar = state["bar"]
        bar.update(done - state["last"], item)
        state["last"] = done

    try:
        yield update
    finally:
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)


@contextmanager
def byte_progress(label: str):
    """update(done_bytes, total_bytes, item) with a bytes/s readout."""
    if not sys.stderr.isatty():
        yield lambda done, total, item="": None
        return
    start = time.monotonic()
    state = {"bar": None, "last": 0}

    def update(done, total, item=""):
        if state["bar"] is None:
            state["bar"] = click.progressbar(length=max(total, 1), label=label, file=sys.stderr, show_pos=False,
                                             show_percent=True, show_eta=True, item_show_func=lambda s: s)
            state["bar"].__enter__()
        rate = done / max(time.monotonic() - start, 1e-6)
        state["bar"].update(done - state["last"], f"{rate / 1e6:.1f} MB/s {_short(item)}")
        state["last"] = done

    try:
        yield update
    finally:
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)


def _short(item: str, width: int = 40) -> str:
    item = str(item or "")
    return item if len(item) <= width else "…" + item[-(width - 1):]
