"""The store lock: serialises, inside a write transaction, changes that add or delete store blobs."""

from __future__ import annotations

from sqlalchemy import text

# arbitrary PostgreSQL advisory lock id serialising store changes (SQLite's BEGIN IMMEDIATE already does)
_STORE_LOCK = 7_305_113


def store_lock(conn) -> None:
    """On SQLite the write transaction (BEGIN IMMEDIATE) is already exclusive. On
    PostgreSQL writers run side by side, so `rm` deleting a blob could race `add`
    reusing it; a transaction-scoped advisory lock closes that window."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _STORE_LOCK})
