"""`hub db current|upgrade`: the registry database's schema revision, without opening a Hub
(which would migrate it on open)."""

from __future__ import annotations

from pathlib import Path


def _database(home: str | None, db_url: str | None):
    from hub import paths
    from hub.registry.db import Database

    root = Path(home).expanduser().resolve() if home else None
    return Database(db_url or paths.default_database_url(root))


def current(home: str | None, db_url: str | None) -> dict:
    """{"url" (password hidden), "revision", "head", "up_to_date"}."""
    from hub.registry.schema import HEAD_REVISION

    database = _database(home, db_url)
    try:
        rev = database.current_revision()
        url = database.engine.url.render_as_string(hide_password=True)
    finally:
        database.dispose()
    return {"url": url, "revision": rev, "head": HEAD_REVISION, "up_to_date": rev == HEAD_REVISION}


def upgrade(home: str | None, db_url: str | None, revision: str = "head") -> tuple[str | None, str | None]:
    """Apply migrations up to ``revision``; (revision before, revision after)."""
    database = _database(home, db_url)
    try:
        before = database.current_revision()
        database.upgrade(revision)
        return before, database.current_revision()
    finally:
        database.dispose()
