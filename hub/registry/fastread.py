"""`hub list` on SQLite through the stdlib sqlite3 module, without importing SQLAlchemy.

A reading command should answer within 0.5 s, and importing SQLAlchemy alone takes
~0.3 s. The SQL is not written here: the first `hub list` of each filter shape takes
the ordinary path (hub.service), after which ``remember`` stores the text SQLAlchemy
compiled from hub.registry.adapters (list_query, list_tags_query) in the user's cache
folder (HUB_CACHE_DIR, default: the platform cache dir; it depends on hub's code, not
on a registry, like __pycache__). Later runs of that shape bind the new values
(hub.registry.filters.list_params) to the stored text. The file is named by a hash of
the modules that define the SQL, so a changed query is compiled afresh. Whatever this module cannot serve (a server
database, a registry below the stored schema head, a shape not compiled yet, a sqlite3
error) gives None, and the caller takes the ordinary path.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
from datetime import datetime
from pathlib import Path

from hub.records import AdapterRecord, adapter_from_row
from hub.registry.filters import ListFilter, list_params, list_shape

_SQL_SOURCES = ("filters.py", "adapters.py", "schema.py", "fastread.py")
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


def _cache_file() -> Path:
    folder = os.environ.get("HUB_CACHE_DIR")
    if not folder:
        from platformdirs import user_cache_dir

        folder = user_cache_dir("hub", appauthor=False)
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in _SQL_SOURCES:
        digest.update((here / name).read_bytes())
    return Path(folder) / f"list-sql-{digest.hexdigest()[:16]}.json"


def _shape_key(f: ListFilter, details: bool) -> str:
    return f"{list_shape(f)};details={int(details)}"


def list_records(home, db_url: str | None, f: ListFilter, full: bool = False,
                 raw: bool = False) -> list[AdapterRecord] | None:
    """What ``Hub.list(f, full)`` returns, or None when this path cannot answer.
    ``raw`` keeps JSON columns as RawJSON text (for printing)."""
    if f.fits is not None:
        return None
    try:
        root = _home(home)
        db_file = _database_file(root, db_url)
        if db_file is None or not db_file.is_file():
            log.debug("list: no SQLite file to read directly; the ordinary path answers")
            return None
        cache = json.loads(_cache_file().read_text())
        entry = cache["shapes"].get(_shape_key(f, full))
        if entry is None:
            log.debug("list: shape %s not compiled yet; the ordinary path answers", _shape_key(f, full))
            return None
        params = list_params(f)
        conn = sqlite3.connect(db_file, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute("BEGIN")  # one snapshot for rows and tags
            if conn.execute("SELECT version_num FROM alembic_version").fetchone() != (cache["head"],):
                return None
            if not _bound(conn, root):   # the ordinary path refuses (or binds) with a message
                return None
            cursor = conn.execute(entry["list"]["sql"], _bind(entry["list"], params))
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, values)) for values in cursor.fetchall()]
            tags: dict[int, list[str]] = {}
            for aid, tag in conn.execute(entry["tags"]["sql"], _bind(entry["tags"], params)):
                tags.setdefault(aid, []).append(tag)
            conn.execute("COMMIT")
        finally:
            conn.close()
    except (OSError, ValueError, KeyError, sqlite3.Error) as exc:
        log.debug("list: fast path unavailable (%s: %s)", type(exc).__name__, exc)
        return None
    log.debug("list: %d rows from %s through the cached SQL", len(rows), db_file)
    out = []
    for row in rows:
        # the values SQLAlchemy's result processing gives on the ordinary path
        for column in ("created_at", "updated_at"):
            if isinstance(row.get(column), str):
                row[column] = datetime.fromisoformat(row[column])
        out.append(adapter_from_row(row, tags.get(row["id"], ()), base_name=row["base_name"], full=full, raw=raw))
    return out


def _bound(conn, root: Path) -> bool:
    """The store under ``root`` records this registry's id (see hub.registry.binding)."""
    from hub import paths
    from hub.doctor import STORE_MARKER as MARKER   # hub.registry.binding imports SQLAlchemy

    recorded = json.loads((paths.store_dir(root) / MARKER).read_text()).get("registry_id")
    row = conn.execute("SELECT value FROM registry_info WHERE key = 'registry_id'").fetchone()
    return row is not None and row[0] == recorded


def _bind(compiled: dict, params: dict) -> list:
    return [params[name] if name in params else compiled["constants"][name] for name in compiled["names"]]


def remember(db, f: ListFilter, full: bool = False) -> None:
    """Store the SQL that the ordinary path ran for ``f`` (``db``: hub.registry.db.Database),
    so that the next `hub list` of this shape can take the fast path. Never fails."""
    if f.fits is not None or db.dialect != "sqlite":
        return
    try:
        from hub.registry.adapters import list_query, list_tags_query
        from hub.registry.schema import HEAD_REVISION

        path = _cache_file()
        try:
            cache = json.loads(path.read_text())
        except (OSError, ValueError):
            cache = {}
        if cache.get("head") != HEAD_REVISION:
            cache = {"head": HEAD_REVISION, "shapes": {}}
        key = _shape_key(f, full)
        if key in cache["shapes"]:
            return
        params = list_params(f)
        entry = {}
        for part, stmt in (("list", list_query(f, details=full)), ("tags", list_tags_query(f))):
            compiled = stmt.compile(dialect=db.engine.dialect)
            names = list(compiled.positiontup or ())
            entry[part] = {"sql": compiled.string, "names": names,
                           "constants": {n: compiled.params[n] for n in names if n not in params}}
        cache["shapes"][key] = entry
        log.debug("list: remembering the SQL of shape %s in %s", key, path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.incomplete")
        tmp.write_text(json.dumps(cache))
        os.replace(tmp, path)
    except Exception:  # noqa: BLE001 - a cache that cannot be written only costs speed
        return
