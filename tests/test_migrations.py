"""Migrations: a blank database reaches head, an upgrade from the first revision works,
and the migrations describe exactly the tables in hub/registry/schema.py."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import inspect

from hub.registry.db import Database, alembic_config
from hub.registry.schema import HEAD_REVISION, include_object_for, metadata


def _url(tmp_path, name):
    # under tests/pg_plugin.py each test has a fresh PostgreSQL database in HUB_DATABASE_URL
    return os.environ.get("HUB_DATABASE_URL") or f"sqlite:///{tmp_path / name}"


def test_blank_database_upgrades_to_head(tmp_path):
    db = Database(_url(tmp_path, "blank.db"))
    assert db.current_revision() in (None, HEAD_REVISION)
    db.ensure_schema()
    assert db.current_revision() == HEAD_REVISION
    tables = set(inspect(db.engine).get_table_names())
    assert {t.name for t in metadata.sorted_tables} <= tables


def test_head_constant_matches_alembic():
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION


def test_upgrade_from_first_revision_and_no_drift(tmp_path):
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    db = Database(_url(tmp_path, "old.db"))
    first = list(ScriptDirectory.from_config(alembic_config()).walk_revisions())[-1].revision
    db.upgrade(first)
    assert db.current_revision() == first
    db.ensure_schema()
    assert db.current_revision() == HEAD_REVISION
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={
            "compare_type": False, "include_object": include_object_for(conn.dialect.name)}), metadata)
    assert diff == [], f"schema.py and migrations disagree: {diff}"
    with db.write() as conn:
        command.downgrade(alembic_config(conn), "base")
    assert db.current_revision() is None


def test_sqlite_runs_in_wal_mode(tmp_path):
    if os.environ.get("HUB_TEST_DATABASE_URL"):
        pytest.skip("SQLite-only")
    db = Database(f"sqlite:///{tmp_path / 'wal.db'}")
    db.ensure_schema()
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar().lower() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
