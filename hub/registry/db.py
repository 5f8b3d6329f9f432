"""Engine, transactions and automatic migrations for the registry database.

SQLite (the embedded default) runs in WAL mode with a busy timeout, and write
transactions start with BEGIN IMMEDIATE so that concurrent writers queue instead
of failing with "database is locked" halfway through. PostgreSQL needs nothing
special beyond an advisory lock around migrations.
"""

from __future__ import annotations

import contextvars
import logging
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, OperationalError, ProgrammingError
from sqlalchemy.exc import DatabaseError as SADatabaseError

from hub.errors import DatabaseError
from hub.registry.schema import HEAD_REVISION

_IMMEDIATE = contextvars.ContextVar("hub_sqlite_immediate", default=False)
BUSY_TIMEOUT_MS = 60_000
_MIGRATION_LOCK = 7_305_112  # arbitrary PostgreSQL advisory lock id for hub migrations
log = logging.getLogger(__name__)


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # let us issue BEGIN ourselves (pysqlite's implicit BEGIN is always DEFERRED)
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA synchronous = NORMAL")
        mode = cur.execute("PRAGMA journal_mode").fetchone()[0]
        if mode.lower() != "wal":
            cur.execute("PRAGMA journal_mode = WAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if _IMMEDIATE.get() else "BEGIN")


def _with_installed_driver(parsed):
    """A bare ``postgresql://`` means psycopg (v3) to SQLAlchemy 2.1, while hub's extra
    installs psycopg2: use whichever of the two is installed."""
    if parsed.drivername != "postgresql":
        return parsed
    import importlib.util

    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
        return parsed.set(drivername="postgresql+psycopg2")
    return parsed


def _refuse_if_disk_full(file: Path) -> None:
    """SQLite says "disk I/O error" or "unable to open" when it cannot create its WAL files."""
    import shutil

    from hub.errors import DiskFull

    try:
        free = shutil.disk_usage(file.parent).free
    except OSError:
        return
    if free < 64 << 10:
        raise DiskFull(f"the disk holding the registry database is full ({free} bytes free)", str(file),
                       "free space there and run the command again")


class RowConflict(Exception):
    """A write broke a uniqueness or foreign-key rule (another writer got there first):
    services catch this, not the driver's exception."""


class Database:
    def __init__(self, url: str):
        self.url = url
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise DatabaseError("database URL is not valid", url,
                                "use e.g. sqlite:////path/registry.db or postgresql://user@host/db") from None
        self.dialect = parsed.get_backend_name()
        self.file = None   # the SQLite file, when there is one
        if self.dialect == "sqlite" and parsed.database not in (None, "", ":memory:"):
            self.file = Path(parsed.database)   # its folder is made on first connect, not here
        try:
            # The dialect's default pool (QueuePool for files and servers): one process runs
            # many short transactions (five per `hub add`), and with NullPool each close was
            # SQLite's last close, which checkpoints the WAL (measured: ~40% of `hub scan --link`)
            self.engine = create_engine(_with_installed_driver(parsed), future=True)
        except (NoSuchModuleError, ImportError) as exc:
            raise DatabaseError(f"no driver for this database URL: {exc}", url,
                                "for PostgreSQL install the extra: pip install 'lora-hub-registry[postgres]'") from None
        if self.dialect == "sqlite":
            _sqlite_setup(self.engine)
        log.debug("registry database %s", parsed.render_as_string(hide_password=True))

    # -- transactions -------------------------------------------------------------------

    @contextmanager
    def read(self):
        with self._connect() as conn:
            with conn.begin():
                yield conn

    @contextmanager
    def write(self):
        token = _IMMEDIATE.set(True)
        try:
            with self._connect() as conn:
                with conn.begin():
                    yield conn
        except IntegrityError as exc:
            raise RowConflict(str(exc.orig)) from exc
        finally:
            _IMMEDIATE.reset(token)

    @contextmanager
    def _connect(self):
        if self.file is not None and not self.file.parent.is_dir():
            self.file.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = self.engine.connect()
        except OperationalError as exc:
            if self.file is None:
                raise DatabaseError(f"cannot open the registry database: {exc.orig}", self.url,
                                    "check HUB_DATABASE_URL and that the server is running") from None
            # a file: no server to be down; say what the file and its disk need
            _refuse_if_disk_full(self.file)
            raise DatabaseError(f"cannot open the registry database file: {exc.orig}", str(self.file),
                                "check the file, its folder's permissions and the free space on its disk") from None
        try:
            yield conn
        finally:
            conn.close()

    # -- migrations ---------------------------------------------------------------------

    def is_new(self) -> bool:
        """A SQLite file that does not exist yet or holds nothing (opening would create it)."""
        if self.file is None:
            return False
        try:
            return self.file.stat().st_size == 0
        except FileNotFoundError:
            return True

    def current_revision(self) -> str | None:
        try:
            with self.read() as conn:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except (OperationalError, ProgrammingError) as exc:
            if "alembic_version" in str(exc) or "no such table" in str(exc):
                return None
            self._damaged(exc)
            raise DatabaseError(f"cannot read the registry database: {exc.orig}", self.url,
                                "check the URL and permissions") from None
        except SADatabaseError as exc:
            self._damaged(exc)
            raise

    def _damaged(self, exc) -> None:
        """SQLite's words for a file that is not (or no longer) a database."""
        words = ("file is not a database", "malformed", "file is encrypted", "disk image")
        if self.file is not None and any(w in str(exc) for w in words):
            raise DatabaseError(f"the registry file is damaged ({exc.orig})", str(self.file),
                                "restore it from a backup, or salvage its rows with `sqlite3 FILE .recover` "
                                "into a new file and point HUB_DATABASE_URL at it; hub will not replace it") from None

    def ensure_schema(self) -> None:
        """Apply pending migrations; cheap when the database is already at head."""
        current = self.current_revision()
        if current == HEAD_REVISION:
            return
        log.info("registry schema at %s, migrating to %s", current or "(empty)", HEAD_REVISION)
        self.upgrade()

    def upgrade(self, revision: str = "head") -> None:
        self._migrate("upgrade", revision)

    def downgrade(self, revision: str) -> None:
        self._migrate("downgrade", revision)

    def _migrate(self, direction: str, revision: str) -> None:
        from alembic import command

        log.debug("alembic %s to %s", direction, revision)
        with self._migration_connection() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            cfg = alembic_config(conn)
            try:
                getattr(command, direction)(cfg, revision)
                if self.dialect == "sqlite":
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise DatabaseError(f"migration left {len(broken)} rows without their parent row",
                                            self.url, "nothing was changed; report this")
            except DatabaseError:
                raise
            except Exception as exc:  # alembic wraps driver errors in many ways
                raise DatabaseError(f"migrating the registry failed: {exc}", self.url,
                                    "back up the database and report this") from exc

    @contextmanager
    def _migration_connection(self):
        """A write transaction for migrations. On SQLite, foreign keys are switched off around
        it: batch mode rebuilds a table by DROP + RENAME, and with foreign keys on, the DROP
        runs every ON DELETE CASCADE, emptying adapter_files, tags and targets. The pragma
        is a no-op inside a transaction, so it is set on the raw connection before BEGIN;
        PRAGMA foreign_key_check verifies the result before COMMIT."""
        if self.dialect != "sqlite":
            with self.write() as conn:
                yield conn
            return
        token = _IMMEDIATE.set(True)
        try:
            with self._connect() as conn:
                raw = conn.connection.dbapi_connection
                raw.execute("PRAGMA foreign_keys = OFF")
                try:
                    with conn.begin():
                        yield conn
                finally:
                    raw.execute("PRAGMA foreign_keys = ON")
        finally:
            _IMMEDIATE.reset(token)

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(connection: Connection | None = None):
    from alembic.config import Config

    from hub.paths import migrations_dir

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg
