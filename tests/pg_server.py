"""A throwaway PostgreSQL cluster for tests: initdb + pg_ctl on 127.0.0.1, a free port,
a temporary folder, fsync off. Nothing is installed or left running.

PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres``
system user (the Debian package creates it) and every server binary runs through
``runuser``. Used by the pytest fixtures (tests/pg_plugin.py, tests/test_postgres.py)
and from the shell by .ci/postgres.sh:

    python tests/pg_server.py start DIR     # prints the URL of the admin database
    python tests/pg_server.py stop DIR
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SERVICE_USER = "postgres"


def admin_sql(url: str, sql: str) -> None:
    """One statement outside a transaction (CREATE/DROP DATABASE) on the database at url."""
    import psycopg2
    from sqlalchemy.engine import make_url

    u = make_url(url)
    conn = psycopg2.connect(host=u.host, port=u.port, user=u.username, password=u.password, dbname=u.database)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


class Unavailable(RuntimeError):
    """PostgreSQL cannot be run here; the message says why and what to install."""


def bin_dir() -> Path:
    """Where initdb/pg_ctl live: HUB_PG_BIN, PATH, or Debian's /usr/lib/postgresql/N/bin."""
    candidates = [os.environ.get("HUB_PG_BIN")]
    found = shutil.which("initdb")
    candidates.append(str(Path(found).parent) if found else None)
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
                         if Path(p).parent.name.isdigit() else 0, reverse=True)
    for c in candidates:
        if c and (Path(c) / "initdb").is_file() and (Path(c) / "pg_ctl").is_file():
            return Path(c)
    raise Unavailable("PostgreSQL server binaries (initdb, pg_ctl) not found: "
                      "install them with `bash .ci/postgres.sh install` (apt-get install postgresql) "
                      "or point HUB_PG_BIN at their folder")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_service_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        raise Unavailable("running as root without `runuser`; run the tests as a normal user")
    try:
        import pwd

        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise Unavailable(f"running as root and there is no {SERVICE_USER!r} user to run PostgreSQL as; "
                          "install the postgresql package, which creates it") from None
    return [runuser, "-u", SERVICE_USER, "--"]


@dataclass
class PgServer:
    root: Path
    port: int
    bin: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        """The admin database; tests create their own databases beside it."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*_as_service_user(), *args], capture_output=True, text=True, check=check,
                              cwd="/")

    @classmethod
    def start(cls, root: str | os.PathLike | None = None) -> "PgServer":
        binaries = bin_dir()
        prefix = _as_service_user()
        root = Path(root) if root else Path(tempfile.mkdtemp(prefix="hub-pg-"))
        root.mkdir(parents=True, exist_ok=True)
        if prefix:  # the service user must own the cluster and reach it
            import pwd

            entry = pwd.getpwnam(SERVICE_USER)
            os.chown(root, entry.pw_uid, entry.pw_gid)
            os.chmod(root, 0o755)
            for parent in root.parents:
                if parent.stat().st_mode & 0o001 == 0:
                    raise Unavailable(f"{parent} is not traversable by {SERVICE_USER!r}; "
                                      "put the cluster elsewhere (e.g. under /tmp)")
        server = cls(root, _free_port(), binaries)
        try:
            server._run(str(binaries / "initdb"), "-D", str(server.data), "-U", "postgres", "--auth=trust",
                        "-E", "UTF8", "--no-sync", "--locale=C")
        except subprocess.CalledProcessError as exc:
            raise Unavailable(f"initdb failed: {exc.stderr.strip()[-400:]}") from None
        options = (f"-h 127.0.0.1 -p {server.port} -k {root} -F -c synchronous_commit=off "
                   f"-c full_page_writes=off -c max_connections=200")
        result = server._run(str(binaries / "pg_ctl"), "-D", str(server.data), "-l", str(root / "server.log"),
                             "-o", options, "-w", "-t", "60", "start", check=False)
        if result.returncode != 0:
            log = (root / "server.log").read_text()[-600:] if (root / "server.log").exists() else ""
            raise Unavailable(f"PostgreSQL did not start: {result.stderr.strip()} {log.strip()}")
        (root / "port").write_text(str(server.port))
        server.wait_ready()
        return server

    @classmethod
    def attach(cls, root: str | os.PathLike) -> "PgServer":
        root = Path(root)
        return cls(root, int((root / "port").read_text()), bin_dir())

    def wait_ready(self, timeout: float = 30) -> None:
        import psycopg2

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg2.connect(self.url, connect_timeout=2).close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def admin(self, sql: str) -> None:
        """Run one statement on the admin database, outside a transaction (CREATE/DROP DATABASE)."""
        admin_sql(self.url, sql)

    def create_database(self, name: str) -> str:
        self.admin(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self, remove: bool = True) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("start", "stop", "url"):
        print(__doc__.strip().splitlines()[-2:], file=sys.stderr)
        return 2
    command, root = argv[0], argv[1]
    try:
        if command == "start":
            print(PgServer.start(root).url)
        elif command == "url":
            print(PgServer.attach(root).url)
        else:
            PgServer.attach(root).stop()
    except Unavailable as exc:
        print(f"pg_server: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
