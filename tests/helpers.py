"""Small helpers shared by test modules."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from click.testing import CliRunner


def run_cli(*args, input=None, env=None):
    """Invoke the real click app in-process; returns click's Result (stdout/stderr separate)."""
    from hub.cli import cli

    runner = CliRunner()
    return runner.invoke(cli, [str(a) for a in args], input=input, env=env, catch_exceptions=False)


def cli_json(*args):
    result = run_cli(*args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def registry_snapshot(home: Path) -> dict:
    """Logical content of the registry and the store: every table's rows and every file's hash."""
    from hub.registry.db import Database
    from hub.registry.schema import metadata

    snap: dict = {"files": {}}
    if home.exists():
        for path in sorted(home.rglob("*")):
            if path.is_file() and path.suffix not in (".db", ".db-wal", ".db-shm") and "-wal" not in path.name \
                    and "-shm" not in path.name and not path.name.endswith(".db"):
                snap["files"][str(path.relative_to(home))] = hashlib.sha256(path.read_bytes()).hexdigest()
    url = os.environ.get("HUB_DATABASE_URL") or f"sqlite:///{home / 'registry.db'}"
    if url.startswith("sqlite") and not (home / "registry.db").exists():
        return snap
    db = Database(url)
    try:
        with db.read() as conn:
            for table in metadata.sorted_tables:
                try:
                    rows = conn.execute(table.select()).all()
                except Exception:  # noqa: BLE001 - table not created yet
                    continue
                snap[table.name] = sorted(repr(tuple(r)) for r in rows)
    finally:
        db.dispose()
    return snap


def registry_state(home: Path) -> dict:
    """registry_snapshot without views/ (hard-link read caches that any read may build)."""
    snap = registry_snapshot(home)
    snap["files"] = {k: v for k, v in snap["files"].items() if not k.startswith("views/")}
    return snap


def run_cli_bounded(*args, bound_s: float = 120):
    """run_cli on a thread, failing the test if the command has not ended after ``bound_s``
    (a generous bound on a hang, not a timing assertion)."""
    import threading

    box = {}
    worker = threading.Thread(target=lambda: box.setdefault("r", run_cli(*args)), daemon=True)
    worker.start()
    worker.join(bound_s)
    assert not worker.is_alive(), f"hub {' '.join(map(str, args))} did not finish within {bound_s} s"
    return box["r"]


def copy_adapter(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def tree_snapshot(root: Path) -> dict:
    """Every path under ``root`` with what it holds: a file's sha256, a symlink's target,
    "dir" for folders; SQLite's own files are left out (compare registry_snapshot's rows)."""
    snap: dict = {}
    for path in sorted(Path(root).rglob("*")):
        rel = str(path.relative_to(root))
        if path.name.endswith((".db", ".db-wal", ".db-shm", ".db-journal")):
            continue
        if path.is_symlink():
            snap[rel] = "-> " + os.readlink(path)
        elif path.is_dir():
            snap[rel] = "dir"
        else:
            snap[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return snap


def one_line_error(result, *needles: str) -> str:
    """Assert a clean refusal: non-zero exit, one `hub: error:` line naming ``needles``."""
    err = result.stderr.strip()
    assert result.exit_code not in (0, 70), (result.exit_code, err)
    assert len(err.splitlines()) == 1 and err.startswith("hub: error:"), err
    assert "Traceback" not in err and "internal error" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def store_blobs(home: Path) -> list[Path]:
    """The content-addressed files in HUB_HOME's store (not its registry.json binding record)."""
    return sorted(p for p in (Path(home) / "store" / "sha256").glob("*/*") if p.is_file())
