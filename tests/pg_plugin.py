"""pytest plugin: run the suite against PostgreSQL instead of SQLite.

    HUB_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:PORT/postgres \\
        python -m pytest -p tests.pg_plugin tests/test_cli_registry.py ...

HUB_TEST_DATABASE_URL names the server's admin database (``.ci/postgres.sh start``
prints one). Every test then gets a brand-new, empty database of its own (created
from template0, dropped afterwards) as HUB_DATABASE_URL, just as every test gets a
fresh HUB_HOME on SQLite; tests/conftest.py leaves HUB_DATABASE_URL alone when
HUB_TEST_DATABASE_URL is set. Without the variable the plugin does nothing.
"""

from __future__ import annotations

import os
import uuid

import pytest


def _admin_url() -> str | None:
    return os.environ.get("HUB_TEST_DATABASE_URL") or None


def pytest_report_header(config):
    url = _admin_url()
    if url:
        from sqlalchemy.engine import make_url

        return f"hub registry backend: PostgreSQL ({make_url(url).render_as_string(hide_password=True)}), " \
               "a fresh database per test"
    return None


def _admin(url: str, sql: str) -> None:
    from tests.pg_server import admin_sql

    admin_sql(url, sql)


@pytest.fixture(autouse=True)
def hub_pg_database(monkeypatch):
    admin = _admin_url()
    if admin is None:
        yield None
        return
    from sqlalchemy.engine import make_url

    name = f"hub_test_{uuid.uuid4().hex[:16]}"
    # FILE_COPY: ~60 ms for an empty database, against ~300 ms for the default WAL_LOG
    _admin(admin, f'CREATE DATABASE "{name}" TEMPLATE template0 STRATEGY FILE_COPY')
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    monkeypatch.setenv("HUB_DATABASE_URL", url)
    yield url
    _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
