"""The team registry on a real PostgreSQL server, in the default test run.

A throwaway cluster (tests/pg_server.py: initdb + pg_ctl on 127.0.0.1, a free port)
is started once for this module; every test gets a fresh database. Skipped with a
clear message only where the server binaries cannot be found (install them with
`bash .ci/postgres.sh install`). The whole CLI suite runs against PostgreSQL with
`bash .ci/postgres.sh test`; this module keeps the essentials in every run: the
migrations and `hub db`, the same CLI answers as SQLite, failures that leave the
database unchanged, a clear line when the server is down, and 8 concurrent writers.
"""

from __future__ import annotations

import json
import os
import uuid

import pytest

from tests.helpers import copy_adapter, registry_snapshot, run_cli
from tests.pg_server import PgServer, Unavailable


@pytest.fixture(scope="module")
def pg_server():
    if os.environ.get("HUB_TEST_DATABASE_URL"):
        pytest.skip("already running the suite on PostgreSQL (tests/pg_plugin.py)")
    try:
        server = PgServer.start()
    except Unavailable as exc:
        pytest.skip(f"PostgreSQL tests skipped: {exc}")
    yield server
    server.stop()


@pytest.fixture()
def pg_url(pg_server, monkeypatch, hub_home):
    name = f"hub_{uuid.uuid4().hex[:12]}"
    pg_server.admin(f'CREATE DATABASE "{name}" TEMPLATE template0 STRATEGY FILE_COPY')
    url = pg_server.url_for(name)
    monkeypatch.setenv("HUB_DATABASE_URL", url)
    yield url
    pg_server.drop_database(name)


def test_db_current_and_upgrade_on_a_blank_server_database(pg_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from hub.registry.db import Database
    from hub.registry.schema import HEAD_REVISION, include_object_for, metadata

    before = json.loads(run_cli("db", "current", "--json").stdout)
    assert before["revision"] is None and before["up_to_date"] is False
    assert before["url"].startswith("postgresql") and before["head"] == HEAD_REVISION
    result = run_cli("db", "upgrade")
    assert result.exit_code == 0 and f"-> {HEAD_REVISION}" in result.stdout
    after = json.loads(run_cli("db", "current", "--json").stdout)
    assert after["revision"] == HEAD_REVISION and after["up_to_date"] is True
    assert run_cli("db", "upgrade").exit_code == 0                      # idempotent
    db = Database(pg_url)
    try:
        with db.engine.connect() as conn:
            opts = {"compare_type": False, "include_object": include_object_for(conn.dialect.name)}
            assert compare_metadata(MigrationContext.configure(conn, opts=opts), metadata) == []
    finally:
        db.dispose()


def _listing(tmp_path, artifacts):
    """The same session of commands; returns what a user sees of the result."""
    tree = tmp_path / "tree"
    for kind in ("plain", "dora", "gpt2", "modules_to_save"):
        copy_adapter(artifacts[kind][1], tree / kind)
    assert run_cli("scan", tree, "--tag", "team").exit_code == 0
    assert run_cli("tag", "dora", "prod", "--remove", "team").exit_code == 0
    assert run_cli("rename", "gpt2", "gpt2-attn").exit_code == 0
    assert run_cli("rm", "-y", "modules_to_save").exit_code == 0
    assert run_cli("export", "plain", tmp_path / "exported").exit_code == 0
    records = json.loads(run_cli("list", "--json").stdout)
    volatile = ("id", "created_at", "source")
    return [{k: v for k, v in r.items() if k not in volatile} for r in records], {
        p.name: p.read_bytes() for p in sorted((tmp_path / "exported").iterdir())}


def test_cli_gives_the_same_answers_as_on_sqlite(pg_url, artifacts, tmp_path, monkeypatch, hub_home):
    on_pg = _listing(tmp_path / "pg", artifacts)
    assert run_cli("verify").exit_code == 0
    doctor = json.loads(run_cli("doctor", "--grace", "0", "--json").stdout)
    assert doctor["healthy"], doctor
    monkeypatch.delenv("HUB_DATABASE_URL")
    monkeypatch.setenv("HUB_HOME", str(tmp_path / "sqlite-home"))
    on_sqlite = _listing(tmp_path / "sqlite", artifacts)
    assert on_pg == on_sqlite
    assert [r["name"] for r in on_pg[0]] == ["dora", "gpt2-attn", "plain"]


@pytest.mark.parametrize("case", ["st: truncated in the data area", "st: overlapping offsets", "st: NaN tensor",
                                  "cfg: r negative", "cfg: regex target_modules matching nothing",
                                  "path: weights symlink outside the folder", "name: ../ traversal",
                                  "tag: shell metacharacters"])
def test_bad_inputs_leave_the_server_database_unchanged(case, pg_url, artifacts, hub_home, tmp_path):
    from tests.test_bad_inputs import CASES

    assert run_cli("add", artifacts["plain"][1], "--name", "existing", "--tag", "keep").exit_code == 0
    before = registry_snapshot(hub_home)
    build, words, code = CASES[case]
    result = run_cli(*build(artifacts["plain"][1], tmp_path / "bad"))
    assert result.exit_code == code and len(result.stderr.strip().splitlines()) == 1
    assert all(w in result.stderr for w in words), result.stderr
    assert registry_snapshot(hub_home) == before


def test_a_server_that_is_down_gives_one_line(pg_server, hub_home):
    url = f"postgresql://postgres@127.0.0.1:{_closed_port()}/hub"
    result = run_cli("--db", url, "list")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hub: error: ") and "Traceback" not in result.stderr
    assert "HUB_DATABASE_URL" in lines[0] or "database" in lines[0]


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_eight_processes_on_one_postgresql_registry(pg_url, artifacts, hub_home, tmp_path, capsys):
    from tests.test_concurrency import WORKERS, hammer

    env = {k: v for k, v in os.environ.items() if k.startswith(("HUB_", "HF_", "PYTHON"))}
    counts = hammer(hub_home, artifacts, tmp_path / "work", env)
    with capsys.disabled():
        print(f"\nconcurrent operations: {counts['operations']} by {WORKERS} processes on PostgreSQL, "
              "zero lost or duplicated rows")


def test_team_setup_from_docs_owner_migrates_members_work(pg_server, artifacts, hub_home, tmp_path, monkeypatch):
    """The roles of docs/team.md: an owner role runs `hub db upgrade`, member roles with
    plain read/write grants use the registry (and cannot change its schema)."""
    suffix = uuid.uuid4().hex[:8]
    owner, member, db = f"hub_owner_{suffix}", f"hub_member_{suffix}", f"hub_team_{suffix}"
    for sql in (f"CREATE ROLE {owner} LOGIN", f"CREATE ROLE {member} LOGIN",
                f"CREATE DATABASE {db} OWNER {owner} TEMPLATE template0 STRATEGY FILE_COPY"):
        pg_server.admin(sql)
    owner_url = f"postgresql://{owner}@127.0.0.1:{pg_server.port}/{db}"
    member_url = f"postgresql://{member}@127.0.0.1:{pg_server.port}/{db}"
    try:
        result = run_cli("--db", owner_url, "db", "upgrade")
        assert result.exit_code == 0, result.stderr
        _as(owner_url, TEAM_GRANTS.format(member=member, owner=owner, db=db))
        monkeypatch.setenv("HUB_DATABASE_URL", member_url)
        assert run_cli("add", artifacts["plain"][1], "--name", "shared", "--tag", "team").exit_code == 0
        assert run_cli("tag", "shared", "prod").exit_code == 0
        assert json.loads(run_cli("db", "current", "--json").stdout)["up_to_date"] is True
        assert [r["name"] for r in json.loads(run_cli("list", "--json").stdout)] == ["shared"]
        assert json.loads(run_cli("doctor", "--grace", "0", "--json").stdout)["healthy"]
        assert run_cli("rm", "-y", "shared").exit_code == 0
        # a member cannot alter the schema
        from sqlalchemy.exc import ProgrammingError

        with pytest.raises(ProgrammingError, match="(?i)permission denied|must be owner"):
            _as(member_url, "ALTER TABLE adapters ADD COLUMN x integer")
    finally:
        pg_server.admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        pg_server.admin(f"DROP ROLE IF EXISTS {member}")
        pg_server.admin(f"DROP ROLE IF EXISTS {owner}")


# Kept word for word in docs/team.md ("Grant members read/write").
TEAM_GRANTS = """
GRANT CONNECT ON DATABASE {db} TO {member};
GRANT USAGE ON SCHEMA public TO {member};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {member};
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {member};
ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {member};
ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {member};
"""


def _as(url: str, sql: str) -> None:
    from hub.registry.db import Database

    db = Database(url)
    try:
        with db.engine.begin() as conn:
            conn.exec_driver_sql(sql)
    finally:
        db.dispose()
