"""Progress bars on stderr that stay quiet when stderr is not a terminal."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Callable

import click

from hub.terminal_text import inert, raw_stream


@contextmanager
def _bar(label: str, show_pos: bool, describe: Callable[[int, str], str]):
    """Yields update(done, total, item); the bar opens lazily once the total is known."""
    if not sys.stderr.isatty():
        yield lambda done, total, item="": None
        return
    state = {"bar": None, "last": 0}

    def update(done, total, item=""):
        if state["bar"] is None:
            # the bar's own \r and cursor codes go to the terminal itself; its texts are made inert
            state["bar"] = click.progressbar(length=max(total or 1, 1), label=inert(label),
                                             file=raw_stream(sys.stderr),
                                             show_pos=show_pos, show_percent=True, show_eta=True,
                                             item_show_func=lambda text: text and inert(text))
            state["bar"].__enter__()
        state["bar"].update(done - state["last"], describe(done, item))
        state["last"] = done

    try:
        yield update
    finally:
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)


def progress_bar(label: str, unit: str = "items"):
    """Counts items (adapters, modules, ...): update(done, total, item) matches the
    service's Progress callbacks."""
    return _bar(f"{label} ({unit})" if unit != "items" else label, True, lambda done, item: _short(item))


def byte_progress(label: str):
    """Counts bytes, with a MB/s readout."""
    start = time.monotonic()

    def describe(done, item):
        rate = done / max(time.monotonic() - start, 1e-6)
        return f"{rate / 1e6:.1f} MB/s {_short(item)}"

    return _bar(label, False, describe)


def _short(item: str, width: int = 40) -> str:
    item = str(item or "")
    return item if len(item) <= width else "…" + item[-(width - 1):]


def announce(text: str) -> None:
    """The first line of a command that loads torch (seconds of imports): what it is about
    to do, on a terminal's stderr before anything heavy is imported (quiet otherwise, like
    the bars, so a script's stderr holds only errors)."""
    if sys.stderr.isatty():
        click.echo(inert(f"hub: {text} …"), err=True)
