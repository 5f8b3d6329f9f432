"""Reading a SQLite registry through the stdlib sqlite3 module, without importing SQLAlchemy.

A reading command should answer about as fast as Python starts, and importing SQLAlchemy
alone takes ~0.3 s. The SQL is not written here: ``SQLiteText`` runs the statements of
hub.registry.statements (the runner of hub.registry.reading) as the text SQLAlchemy
compiled from them, and `hub list` runs the text of hub.registry.adapters' list_query
for its filter's shape, then reads those rows' tags with tags_of_ids_query (Hub.list, in
hub.registry.list_engine, compiles a shape on its first use and stores it; later runs of
that shape bind the new values, hub.listing.filters.list_params).
The compiled text lives in the user's cache folder (HUB_CACHE_DIR, default: the platform
cache dir; it depends on hub's code, not on a registry, like __pycache__), in a file named
by a hash of the modules that define the SQL, so a changed query is compiled afresh; a
statement missing there is compiled on first use (that run imports SQLAlchemy). Whatever
this module cannot serve (a server database, a registry at another schema revision or
not bound to its store, a list shape not compiled yet, a sqlite3 error) gives None, and
the caller takes the ordinary path (hub.service.Hub), which migrates or refuses with a
message.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from hub import atomic
from hub.records import AdapterRecord
from hub.registry.rows import adapter_from_row
from hub.listing.filters import ListFilter, list_params, list_shape
from hub.registry.reading import Row

# the modules that define the SQL text (relative to hub/): a change to any compiles afresh
_SQL_SOURCES = ("listing/filters.py", "registry/adapters.py", "registry/schema.py", "registry/statements.py",
                "registry/fastread.py")
_BUSY_TIMEOUT_S = 60.0
log = logging.getLogger(__name__)


def _home(home: str | os.PathLike | None) -> Path:
    if home:
        return Path(home).expanduser().resolve()
    from hub import paths

    return paths.home()


def _database_file(home: Path, db_url: str | None) -> Path | None:
    url = db_url or os.environ.get("HUB_DATABASE_URL")
    if not url:
        return home / "registry.db"
    if url.startswith("sqlite:///") and "?" not in url and url != "sqlite:///:memory:":
        return Path(url[len("sqlite:///"):])
    return None


@functools.cache
def _code_digest() -> str:
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parents[1]
    for name in _SQL_SOURCES:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


def _cache_file() -> Path:
    folder = os.environ.get("HUB_CACHE_DIR")
    if not folder:
        from platformdirs import user_cache_dir

        folder = user_cache_dir("hub", appauthor=False)
    return Path(folder) / f"read-sql-{_code_digest()}.json"


def _read_cache(path: Path) -> dict | None:
    try:
        cache = json.loads(path.read_text())
        if isinstance(cache.get("shapes"), dict) and isinstance(cache.get("statements"), dict):
            return cache
    except (OSError, ValueError, AttributeError):
        pass
    return None


# One cache per file and process (a Hub lists many times; the TUI from several threads).
_CACHES: dict[Path, dict] = {}
_CACHE_LOCK = threading.Lock()


def _load_cache(path: Path) -> dict:
    with _CACHE_LOCK:
        cache = _CACHES.get(path)
        if cache is None:
            cache = _read_cache(path)
            if cache is None:
                from hub.registry.schema import HEAD_REVISION   # first run: imports SQLAlchemy

                cache = {"head": HEAD_REVISION, "shapes": {}, "statements": {}}
            cache = _CACHES[path] = cache
        return cache


def _save_cache(path: Path, cache: dict) -> None:
    """Atomically, with what other processes stored meanwhile; a cache that cannot be
    written only costs speed."""
    with _CACHE_LOCK:
        on_disk = _read_cache(path)
        if on_disk is not None and on_disk.get("head") == cache.get("head"):
            for part in ("shapes", "statements"):
                cache[part] = {**on_disk[part], **cache[part]}
        try:
            atomic.write_text(path, json.dumps(cache))
        except OSError:
            return


def _compiled(stmt, dialect, params=()) -> dict:
    from hub.registry.statements import result_kinds

    compiled = stmt.compile(dialect=dialect)
    names = list(compiled.positiontup or ())
    return {"sql": compiled.string, "names": names, "kinds": result_kinds(stmt),
            "constants": {n: compiled.params[n] for n in names if n not in params}}


class SQLiteText:
    """The hub.registry.reading runner over one sqlite3 snapshot (see the module doc)."""

    def __init__(self, conn: sqlite3.Connection, cache: dict, path: Path | None = None):
        self.conn = conn
        self.cache = cache
        self.path = path      # where the cache is saved once something was compiled
        self.dirty = False

    def flush(self) -> None:
        """Save what this runner compiled, for the next process."""
        if self.dirty and self.path is not None:
            _save_cache(self.path, self.cache)
            self.dirty = False

    def rows(self, statement_name: str, /, **values) -> list[Row]:
        entry = self.cache["statements"].get(statement_name)
        if entry is None:   # compiled once, on the first use of this statement
            from sqlalchemy.dialects import sqlite

            from hub.registry.statements import statement

            entry = _compiled(statement(statement_name), sqlite.dialect())
            with _CACHE_LOCK:
                self.cache["statements"][statement_name] = entry
            self.dirty = True
        return self.execute(entry, values)

    def execute(self, entry: dict, values: dict) -> list[Row]:
        cursor = self.conn.execute(entry["sql"], _bind(entry, values))
        names = [d[0] for d in cursor.description]
        kinds = entry.get("kinds", {})
        # what SQLAlchemy's result processing does, by position, in one pass over each row
        convert = [(i, datetime.fromisoformat if kinds[n] == "datetime" else bool)
                   for i, n in enumerate(names) if n in kinds]
        rows = []
        for found in cursor.fetchall():
            if convert:
                found = list(found)
                for i, to in convert:
                    if found[i] is not None:
                        found[i] = to(found[i])
            rows.append(Row(zip(names, found)))
        return rows


@contextmanager
def open_text(home, db_url: str | None):
    """A SQLiteText runner on one snapshot of the registry, or None where this path cannot
    serve it (see the module doc)."""
    root = _home(home)
    db_file = _database_file(root, db_url)
    if db_file is None or not db_file.is_file():
        log.debug("no SQLite file to read directly; the ordinary path answers")
        yield None
        return
    path = _cache_file()
    cache = _load_cache(path)
    try:
        conn = sqlite3.connect(db_file, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error:
        yield None
        return
    try:
        conn.execute("BEGIN")  # one snapshot for every statement, like Database.read()
        ready = (conn.execute("SELECT version_num FROM alembic_version").fetchone() == (cache["head"],)
                 and _bound(conn, root))   # else the ordinary path migrates, binds or refuses
    except (OSError, ValueError, KeyError, sqlite3.Error) as exc:
        log.debug("fast path unavailable (%s: %s)", type(exc).__name__, exc)
        ready = False
    runner = SQLiteText(conn, cache, path) if ready else None
    log.debug("reading %s %s", db_file, "through the cached SQL text (stdlib sqlite3)" if ready else
              "through the ordinary path (schema, store binding or cache not ready)")
    try:
        yield runner
    finally:
        conn.close()
        if runner is not None:
            runner.flush()


def over_connection(conn) -> SQLiteText:
    """A runner over an open SQLAlchemy connection's own sqlite3 handle (its transaction,
    its snapshot): the same path in a process that holds a Hub. The schema is at the head
    revision there (the Hub migrated it)."""
    from hub.registry.schema import HEAD_REVISION

    path = _cache_file()
    cache = _load_cache(path)
    if cache.get("head") != HEAD_REVISION:
        with _CACHE_LOCK:
            cache = _CACHES[path] = {"head": HEAD_REVISION, "shapes": {}, "statements": {}}
    return SQLiteText(conn.connection.driver_connection, cache, path)


def _shape_key(f: ListFilter, details: bool) -> str:
    return f"{list_shape(f)};details={int(details)}"


def list_records(run: SQLiteText, f: ListFilter, full: bool = False, raw: bool = False,
                 dialect=None) -> list[AdapterRecord] | None:
    """What ``Hub.list(f, full)`` returns, or None when this path cannot answer (--fits; ``f``'s
    shape not compiled yet, unless ``dialect``, a SQLAlchemy dialect, is given to compile it
    with). ``raw`` keeps JSON columns as RawJSON text (for printing)."""
    if f.fits is not None:
        return None
    key = _shape_key(f, full)
    entry = run.cache["shapes"].get(key)
    if entry is None and dialect is not None:
        entry = _compile_shape(f, full, dialect)
        with _CACHE_LOCK:
            run.cache["shapes"][key] = entry
        run.dirty = True
    if entry is None:
        log.debug("list: shape %s not compiled yet; the ordinary path answers", key)
        return None
    params = list_params(f)
    rows = run.execute(entry["list"], params)
    tags: dict[int, list[str]] = {}
    for row in run.execute(entry["tags"], {"ids": json.dumps([row["id"] for row in rows])}):
        tags.setdefault(row["adapter_id"], []).append(row["tag"])
    log.debug("list: %d rows of shape %s", len(rows), key)
    return [adapter_from_row(row, tags.get(row["id"], ()), base_name=row["base_name"], full=full, raw=raw)
            for row in rows]


def _compile_shape(f: ListFilter, full: bool, dialect) -> dict:
    from hub.registry.adapters import list_query, tags_of_ids_query

    params = list_params(f)
    return {part: _compiled(stmt, dialect, params)
            for part, stmt in (("list", list_query(f, details=full)), ("tags", tags_of_ids_query()))}


def _bound(conn, root: Path) -> bool:
    """The store under ``root`` records this registry's id (see hub.registry.binding)."""
    from hub import paths
    from hub.doctor import STORE_MARKER as MARKER   # hub.registry.binding imports SQLAlchemy

    recorded = json.loads((paths.store_dir(root) / MARKER).read_text()).get("registry_id")
    row = conn.execute("SELECT value FROM registry_info WHERE key = 'registry_id'").fetchone()
    return row is not None and row[0] == recorded


def _bind(compiled: dict, params: dict) -> list:
    return [params[name] if name in params else compiled["constants"][name] for name in compiled["names"]]
