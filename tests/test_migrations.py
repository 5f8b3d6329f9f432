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
    db.downgrade("base")
    assert db.current_revision() is None


def test_sqlite_runs_in_wal_mode(tmp_path):
    if os.environ.get("HUB_TEST_DATABASE_URL"):
        pytest.skip("SQLite-only")
    db = Database(f"sqlite:///{tmp_path / 'wal.db'}")
    db.ensure_schema()
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar().lower() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000


def test_rows_of_child_tables_survive_every_migration(tmp_path):
    """SQLite batch mode rebuilds tables by DROP + RENAME; with foreign keys on, that DROP
    would run ON DELETE CASCADE and empty adapter_files, tags and targets (it did once).
    An adapter registered at the first revision keeps every child row up to head and back."""
    from datetime import datetime, timezone

    from alembic.script import ScriptDirectory
    from sqlalchemy import MetaData, Table, func, insert, select

    db = Database(_url(tmp_path, "children.db"))
    first = list(ScriptDirectory.from_config(alembic_config()).walk_revisions())[-1].revision
    db.upgrade(first)
    stamp = datetime.now(timezone.utc)
    row = dict(name="alpha", sha256="1" * 64, peft_type="LORA", r=4, lora_alpha=8.0, scaling=2.0,
               use_rslora=False, use_dora=False, fan_in_fan_out=False, lora_bias=False,
               has_embedding_lora=False, has_modules_to_save=False, target_modules="q_proj,v_proj",
               num_layers=2, num_modules=4, param_count=1, size_bytes=10, config_json="{}", modules_json="{}",
               saved_tensors_json="{}", findings_json="[]", storage="store", source_kind="local",
               created_at=stamp, updated_at=stamp)
    children = {"adapter_files": [dict(name="adapter_model.safetensors", size=10, sha256="2" * 64),
                                  dict(name="adapter_config.json", size=2, sha256="3" * 64)],
                "adapter_targets": [dict(target="q_proj"), dict(target="v_proj")],
                "adapter_tags": [dict(tag="prod")]}

    def counts():
        with db.read() as conn:
            old = MetaData()
            return {t: conn.execute(select(func.count()).select_from(Table(t, old, autoload_with=conn))).scalar()
                    for t in ["adapters", *children]}

    with db.write() as conn:
        old = MetaData()
        adapter_id = conn.execute(insert(Table("adapters", old, autoload_with=conn)), row).inserted_primary_key[0]
        for table, rows in children.items():
            conn.execute(insert(Table(table, old, autoload_with=conn)),
                         [dict(r, adapter_id=adapter_id) for r in rows])
    expected = {"adapters": 1, "adapter_files": 2, "adapter_targets": 2, "adapter_tags": 1}
    assert counts() == expected
    db.ensure_schema()
    assert db.current_revision() == HEAD_REVISION
    assert counts() == expected
    db.downgrade(first)
    assert counts() == expected
    db.dispose()
