"""`import hub`: a lazy public API, errors that are also the matching builtins, and the
distribution name declared once."""

from __future__ import annotations

import ast
import errno
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import hub
from hub import errors

ROOT = Path(__file__).resolve().parents[2]


def test_import_hub_alone_imports_no_heavy_library():
    code = "import hub, json, sys; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    loaded = set(json.loads(out.stdout))
    heavy = {m for m in loaded if m.split(".")[0] in ("torch", "sqlalchemy", "textual", "click", "typing")}
    assert not heavy, heavy
    assert {m for m in loaded if m.startswith("hub.")} == {"hub._version"}, "import hub loads no other hub module"


def test_every_public_name_resolves_and_is_listed():
    for name in hub.__all__:
        value = getattr(hub, name)
        if isinstance(value, type):
            assert value.__name__ == name
    assert set(hub.__all__) <= set(dir(hub))
    with pytest.raises(AttributeError):
        hub.no_such_name  # noqa: B018


def test_type_checking_imports_match_the_lazy_table():
    """Type checkers read the TYPE_CHECKING block; run time reads _EXPORTS: the two agree."""
    tree = ast.parse((ROOT / "hub" / "__init__.py").read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    imported = {(node.module, a.name) for node in block.body for a in node.names}
    assert imported == {(module, name) for name, module in hub._EXPORTS.items()}


@pytest.mark.parametrize("error, builtin", [
    (errors.UsageError, ValueError),
    (errors.NotFound, LookupError),
    (errors.AlreadyExists, FileExistsError),
    (errors.InvalidAdapter, ValueError),
    (errors.InvalidConfig, ValueError),
    (errors.InvalidSafetensors, ValueError),
    (errors.UnsafeFormat, ValueError),
    (errors.InvalidBaseModel, ValueError),
    (errors.Incompatible, ValueError),
    (errors.IntegrityError, ValueError),
    (errors.Unsupported, NotImplementedError),
    (errors.RemoteError, OSError),
    (errors.StoreError, OSError),
    (errors.DiskFull, OSError),
])
def test_errors_are_also_the_matching_builtin(error, builtin):
    err = error("what went wrong", "where", "what to do")
    assert isinstance(err, builtin) and isinstance(err, errors.HubError)
    assert str(err) == "what went wrong (where): what to do"
    assert err.line() == str(err)


def test_disk_full_check_maps_enospc_but_never_rewraps_a_hub_error():
    with pytest.raises(errors.DiskFull, match="no space left"):
        errors.DiskFull.check(OSError(errno.ENOSPC, "No space left on device", "/x"), "/x")
    errors.DiskFull.check(errors.DiskFull("already one line", "/x"), "/x")   # no new error
    errors.DiskFull.check(OSError(errno.EACCES, "denied"), "/x")


def test_a_database_error_from_either_listing_path_is_one_line():
    """Hub.list's text path raises the stdlib sqlite3 errors, SQLAlchemy's path its own: both
    read as the same "database error" line with exit code 1."""
    import sqlite3

    from hub.error_lines import render_error

    line, code = render_error(sqlite3.OperationalError("database is locked"))
    assert (line, code) == ("hub: error: database error: database is locked", 1)


def test_distribution_name_declared_and_used():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == hub.DISTRIBUTION != "hub"
    assert project["dynamic"] == ["version"] and "version" not in project
    assert project["scripts"] == {"hub": "hub.cli:main"}
    readme = (ROOT / "README.md").read_text()
    assert f"pip install {hub.DISTRIBUTION}" in readme
    assert (ROOT / "hub" / "py.typed").is_file()


def test_version_names_the_distribution():
    from click.testing import CliRunner

    from hub.cli import cli

    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and result.output == f"hub {hub.__version__} ({hub.DISTRIBUTION})\n"
