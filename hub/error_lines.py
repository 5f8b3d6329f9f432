"""Any exception as one line for people, with its exit code: one table from exception types to
(prefix, exit code), shared by the CLI and the TUI. No try/except per command."""

from __future__ import annotations

from hub.errors import HubError
from hub.redact import redact
from hub.terminal_text import inert

# checked in order; first match wins
ERROR_TABLE: list[tuple[str, str, int]] = [
    ("hub.errors.HubError", "", -1),                      # carries its own message and exit code
    ("sqlalchemy.exc.OperationalError", "database error", 1),
    ("sqlalchemy.exc.DBAPIError", "database error", 1),
    ("sqlite3.Error", "database error", 1),               # the listing engine's text path (hub.registry.fastread)
    ("PermissionError", "permission denied", 1),
    ("FileNotFoundError", "file not found", 1),
    ("OSError", "system error", 1),
]


def _matches(exc: BaseException, dotted: str) -> bool:
    for cls in type(exc).__mro__:
        if f"{cls.__module__}.{cls.__qualname__}" == dotted or cls.__qualname__ == dotted:
            return True
    return False


def render_error(exc: BaseException) -> tuple[str, int]:
    if isinstance(exc, HubError):
        return f"hub: error: {exc.line()}", exc.exit_code
    full = _disk_full(exc)
    if full is not None:
        return f"hub: error: {full.line()}", full.exit_code
    for dotted, prefix, code in ERROR_TABLE[1:]:
        if _matches(exc, dotted):
            detail = getattr(exc, "orig", None) or exc
            if isinstance(exc, OSError) and exc.filename:
                detail = f"{exc.strerror} ({exc.filename})"
            return f"hub: error: {prefix}: {_one_line(detail)}", code
    return f"hub: internal error: {_one_line(f'{type(exc).__name__}: {exc}')} " \
           "(please report this with the command you ran)", 70


def _disk_full(exc: BaseException):
    """ENOSPC/EDQUOT from any write, and SQLite's "database or disk is full", as one DiskFull line."""
    from hub.errors import DiskFull

    try:
        DiskFull.check(exc, "HUB_HOME")
    except DiskFull as full:
        return full
    if "database or disk is full" in str(exc):
        return DiskFull("the disk holding the registry database is full", None,
                        "free space there and run the command again")
    return None


def _one_line(text) -> str:
    """Exception text (it may come from a server) as one inert line without secrets."""
    return inert(redact(" ".join(str(text).split())))
