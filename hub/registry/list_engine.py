"""The one listing engine behind `hub list`, ``Hub.list`` and library callers.

A filter's list query is written once (hub.registry.adapters.list_query). On SQLite it runs
as the SQL text SQLAlchemy compiled for the filter's shape (hub.registry.fastread): over
the stdlib sqlite3 module in a fresh CLI process (hub.reader), and here over the open
connection's own sqlite3 handle, which compiles a shape on its first use and stores it
for the next process. SQLAlchemy runs the query itself on other databases and for
``fits`` filters. Either way the records are built by hub.registry.rows.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from hub.listing.filters import ListFilter
from hub.records import AdapterRecord
from hub.registry import adapters, fastread
from hub.registry.rows import adapter_from_row


def records(conn: Connection, f: ListFilter, full: bool = False) -> list[AdapterRecord]:
    """The adapters ``f`` selects, as ``Hub.list`` returns them."""
    if f.fits is None and conn.dialect.name == "sqlite":
        return by_text(conn, f, full)
    return by_alchemy(conn, f, full)


def by_text(conn: Connection, f: ListFilter, full: bool = False) -> list[AdapterRecord]:
    """The fast path: the compiled text on ``conn``'s sqlite3 handle (SQLite only)."""
    run = fastread.over_connection(conn)
    try:
        return fastread.list_records(run, f, full, dialect=conn.dialect)
    finally:
        run.flush()


def by_alchemy(conn: Connection, f: ListFilter, full: bool = False) -> list[AdapterRecord]:
    """The same query run by SQLAlchemy (any database)."""
    rows = adapters.list_rows(conn, f, details=full)
    tags = adapters.tags_for(conn, [r.id for r in rows])
    return [adapter_from_row(r, tags.get(r.id, ()), base_name=r.base_name, full=full) for r in rows]
