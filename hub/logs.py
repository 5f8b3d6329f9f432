"""Log output for the command line: ``hub -v`` (debug) or ``HUB_LOG=debug|info|warning|error``.

Modules log through ``logging.getLogger(__name__)`` and never configure anything (a
library must not); the CLI calls :func:`configure` for one invocation and undoes it at
the end. Lines go to stderr, so ``--json`` output on stdout stays clean. Every line
passes through hub.redact (tokens, ``user:password@`` in URLs) and hub.terminal_text
(control characters), whatever a module passed in.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping

from hub.errors import UsageError

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR, "critical": logging.CRITICAL}
ENV = "HUB_LOG"


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        from hub.redact import redact
        from hub.terminal_text import inert

        return inert(redact(super().format(record)), newlines=True)


class _Stderr(logging.Handler):
    """Writes to the *current* sys.stderr (the CLI wraps it; click's test runner swaps it)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(_Formatter("%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - logging's own convention: a failed log line never fails the work
            self.handleError(record)


def level_from(verbose: bool, env: Mapping[str, str]) -> int | None:
    """The level asked for: ``-v`` means debug; else HUB_LOG; None: no log output."""
    if verbose:
        return logging.DEBUG
    name = env.get(ENV, "").strip().lower()
    if not name:
        return None
    if name not in LEVELS:
        raise UsageError(f"{ENV}={name!r} is not a log level", ENV, f"use one of: {', '.join(LEVELS)}")
    return LEVELS[name]


def configure(verbose: bool, env: Mapping[str, str]) -> Callable[[], None] | None:
    """Send hub's log records at the asked level to stderr; returns the function that undoes it."""
    level = level_from(verbose, env)
    if level is None:
        return None
    logger = logging.getLogger("hub")
    handler = _Stderr()
    saved = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)

    def undo() -> None:
        logger.removeHandler(handler)
        logger.setLevel(saved)

    return undo
