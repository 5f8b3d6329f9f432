"""Issue 11, data loss: a store is bound to its registry (hub.registry.binding).

A wrong `--db`, a registry file emptied, replaced or damaged, or a team member's shell
without HUB_DATABASE_URL must never let a command (least of all `doctor --fix`) treat
the store's files as orphans: each is refused with one line naming the registry the
store belongs to (URL without credentials) and `HUB_DATABASE_URL`, and afterwards the
registry's rows, every file under the test folder and the registry file are unchanged.
On PostgreSQL (`bash .ci/postgres.sh test`) "another registry" is another database.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid

import pytest

from tests.helpers import one_line_error, registry_snapshot, run_cli, tree_snapshot

ON_PG = bool(os.environ.get("HUB_TEST_DATABASE_URL"))
sqlite_only = pytest.mark.skipif(ON_PG, reason="a registry *file* exists on SQLite only")
COMMANDS = [["doctor", "--fix"], ["list"], ["list", "--json"], ["show", "plain"], ["rm", "plain", "--yes"],
            ["tag", "plain", "x"], ["rename", "plain", "other"], ["verify"], ["models"], ["base", "list"]]
TRIED: list[str] = []


@pytest.fixture()
def stocked(artifacts, hub_home, tmp_path):
    for kind in ("plain", "dora"):
        result = run_cli("add", artifacts[kind][1], "--name", kind)
        assert result.exit_code == 0, result.stderr
    assert run_cli("list").exit_code == 0          # the fast path's SQL is cached too
    return hub_home


def _state(home, tmp_path, rows: bool = True):
    """Rows (when the registry can be read) and every file with its hash; with the SQLite
    registry file's bytes when it exists (opening it would change it)."""
    db = home / "registry.db"
    raw = db.read_bytes() if db.exists() else None
    return registry_snapshot(home) if rows else None, tree_snapshot(tmp_path), raw


def _all_refused(home, tmp_path, prefix, *needles, rows: bool = True):
    before = _state(home, tmp_path, rows)
    for cmd in COMMANDS:
        result = run_cli(*prefix, *cmd)
        one_line_error(result, *needles)
        TRIED.append(" ".join(map(str, [*prefix, *cmd])))
    assert _state(home, tmp_path, rows) == before


def _other_registry_url(tmp_path) -> str:
    """A second, brand-new registry: another SQLite file, or another PostgreSQL database."""
    if not ON_PG:
        return f"sqlite:///{tmp_path / 'elsewhere' / 'other.db'}"
    from sqlalchemy.engine import make_url

    from tests.pg_server import admin_sql

    name = f"hub_other_{uuid.uuid4().hex[:12]}"
    admin = os.environ["HUB_TEST_DATABASE_URL"]
    admin_sql(admin, f'CREATE DATABASE "{name}" TEMPLATE template0')
    return make_url(admin).set(database=name).render_as_string(hide_password=False)


def test_every_command_refuses_a_new_empty_registry_beside_the_store(stocked, tmp_path):
    url = _other_registry_url(tmp_path)
    _all_refused(stocked, tmp_path, ["--db", url], "this store belongs to registry", "HUB_DATABASE_URL")
    if not ON_PG:
        assert not (tmp_path / "elsewhere").exists() or not any((tmp_path / "elsewhere").iterdir())


def test_every_command_refuses_another_non_empty_registry(stocked, tmp_path, artifacts):
    url = _other_registry_url(tmp_path)
    other_home = tmp_path / "other-home"
    made = run_cli("--home", other_home, "--db", url, "add", artifacts["plain"][1], "--name", "plain")
    assert made.exit_code == 0, made.stderr
    _all_refused(stocked, tmp_path, ["--db", url], "this store belongs to registry", "HUB_DATABASE_URL")
    # and the other way round: the other registry's own store is refused with ours
    before = _state(stocked, tmp_path)
    one_line_error(run_cli("--home", other_home, "doctor", "--fix"), "belongs to registry")
    assert _state(stocked, tmp_path) == before


def test_team_member_shell_without_database_url(stocked, tmp_path, monkeypatch):
    """The store names its registry's URL, without credentials, in the refusal."""
    marker = json.loads((stocked / "store" / "registry.json").read_text())
    owner = marker["registry"]
    assert "@" not in owner and ":secret" not in owner
    if ON_PG:
        monkeypatch.delenv("HUB_DATABASE_URL")            # the member's shell: default SQLite under HUB_HOME
        before = _state(stocked, tmp_path)
        err = one_line_error(run_cli("doctor", "--fix"), f"set HUB_DATABASE_URL={owner}")
        assert "password" not in err
        assert _state(stocked, tmp_path) == before and not (stocked / "registry.db").exists()
    else:
        # a team registry at its own path; the member's default is HUB_HOME/registry.db
        team = tmp_path / "team.db"
        shutil.move(stocked / "registry.db", team)
        for suffix in ("-wal", "-shm"):
            if (stocked / f"registry.db{suffix}").exists():
                shutil.move(stocked / f"registry.db{suffix}", tmp_path / f"team.db{suffix}")
        before = _state(stocked, tmp_path)
        one_line_error(run_cli("doctor", "--fix"), "this store belongs to registry", "HUB_DATABASE_URL")
        assert _state(stocked, tmp_path) == before and not (stocked / "registry.db").exists()
        assert run_cli("--db", f"sqlite:///{team}", "list").exit_code == 0


@sqlite_only
@pytest.mark.parametrize("how", ["truncated", "deleted", "replaced"])
def test_emptied_or_replaced_registry_file_is_refused(stocked, tmp_path, artifacts, how):
    db = stocked / "registry.db"
    for suffix in ("-wal", "-shm"):
        (stocked / f"registry.db{suffix}").unlink(missing_ok=True)
    if how == "truncated":
        db.write_bytes(b"")
    elif how == "deleted":
        db.unlink()
    else:
        fresh = tmp_path / "fresh-home"
        assert run_cli("--home", fresh, "list").exit_code == 0
        shutil.copyfile(fresh / "registry.db", db)
    _all_refused(stocked, tmp_path, [], "HUB_DATABASE_URL", rows=how == "replaced")


@sqlite_only
@pytest.mark.parametrize("garbage", [b"\x00" * 4096, os.urandom(8192), b"SQLite format 3\x00" + b"\xff" * 4000])
def test_damaged_registry_file_names_the_file_and_the_way_out(stocked, tmp_path, garbage):
    db = stocked / "registry.db"
    for suffix in ("-wal", "-shm"):
        (stocked / f"registry.db{suffix}").unlink(missing_ok=True)
    db.write_bytes(garbage)
    before = _state(stocked, tmp_path, rows=False)
    for cmd in COMMANDS:
        one_line_error(run_cli(*cmd), "registry file is damaged", str(db), "backup", ".recover")
        TRIED.append(f"damaged registry: {' '.join(cmd)}")
    assert _state(stocked, tmp_path, rows=False) == before and db.read_bytes() == garbage


def test_existing_pair_is_bound_on_first_open_and_an_unknown_store_is_not(stocked, tmp_path):
    """A pair met for the first time (no store record yet: a store from before this version)
    is adopted when the registry names files the store holds; a store whose files the
    registry does not name is refused instead."""
    marker = stocked / "store" / "registry.json"
    first = json.loads(marker.read_text())
    marker.unlink()
    first_open = run_cli("list")
    assert first_open.exit_code == 0, first_open.stderr
    assert json.loads(marker.read_text()) == first     # the registry's id, given by its migration

    marker.unlink()
    fresh = _other_registry_url(tmp_path)
    made = run_cli("--home", tmp_path / "h2", "--db", fresh, "list")
    assert made.exit_code == 0, made.stderr
    before = _state(stocked, tmp_path)
    one_line_error(run_cli("--db", fresh, "doctor", "--fix"), "HUB_DATABASE_URL")
    assert _state(stocked, tmp_path) == before


def test_doctor_keeps_the_marker_and_still_removes_real_orphans(stocked, tmp_path):
    from hub.service import Hub

    orphan = stocked / "store" / "sha256" / "ab" / ("ab" + "0" * 62)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"left by a crash")
    with Hub(home=stocked) as hub:
        report = hub.doctor(fix=True, grace_s=0)
    assert [p.kind for p in report.fixed] == ["orphan_blob"] and report.healthy
    assert not orphan.exists() and (stocked / "store" / "registry.json").is_file()


def test_display_url_drops_credentials():
    from hub.registry.binding import display_url

    assert display_url("postgresql://alice:s3cret@db.internal:5432/hub?sslmode=require") == \
        "postgresql://db.internal:5432/hub"
    assert display_url("sqlite:////tmp/x/registry.db") == "sqlite:////tmp/x/registry.db"


def test_report_cases_tried():
    print(f"\nregistry binding: {len(TRIED)} refused command runs")
