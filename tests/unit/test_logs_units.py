"""hub.logs: the level asked for, and every line redacted and inert whatever a module passed."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from hub.errors import UsageError
from hub.logs import configure, level_from


def test_levels():
    assert level_from(True, {"HUB_LOG": "error"}) == logging.DEBUG     # -v wins
    assert level_from(False, {"HUB_LOG": " Info "}) == logging.INFO
    assert level_from(False, {}) is None and level_from(False, {"HUB_LOG": ""}) is None
    with pytest.raises(UsageError, match="HUB_LOG='loud' is not a log level"):
        level_from(False, {"HUB_LOG": "loud"})


def test_lines_are_redacted_inert_and_the_handler_goes_away(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    logger = logging.getLogger("hub.unit-test")
    undo = configure(False, {"HUB_LOG": "debug"})
    assert undo is not None
    try:
        logger.debug("url %s token hf_%s\x1b[2J", "https://me:pw123456@host/x", "A" * 20)
        logger.getChild("quiet").log(5, "below debug")
    finally:
        undo()
    logger.debug("after undo")   # the level and the handler are gone again
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, lines
    line = lines[0]
    assert "DEBUG hub.unit-test: url https://***@host/x token hf_***\\x1b[2J" in line
    assert "pw123456" not in line and "\x1b" not in line
