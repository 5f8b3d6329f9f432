"""Every location hub uses derives from HUB_HOME.

HUB_HOME defaults to the platform's user data dir; HUB_DATABASE_URL overrides
the registry database (e.g. a PostgreSQL URL shared by a team).
"""

from __future__ import annotations

import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent
_REPO = _PKG.parent


def home() -> Path:
    env = os.environ.get("HUB_HOME")
    if env:
        return Path(env).expanduser().resolve()
    from platformdirs import user_data_dir

    return Path(user_data_dir("hub", appauthor=False))


def store_dir(root: Path | None = None) -> Path:
    return (root or home()) / "store"


def tmp_dir(root: Path | None = None) -> Path:
    """Scratch space on the same filesystem as the store, so renames are atomic."""
    return (root or home()) / "tmp"


def default_database_url(root: Path | None = None) -> str:
    env = os.environ.get("HUB_DATABASE_URL")
    if env:
        return env
    return f"sqlite:///{(root or home()) / 'registry.db'}"


def _data_dir(name: str) -> Path:
    # Installed wheel: schemas/ and migrations/ are force-included under hub/_data.
    # Source checkout or editable install: they sit at the repository root.
    for candidate in (_PKG / "_data" / name, _REPO / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"hub data folder {name!r} is missing from the installation")


def schemas_dir() -> Path:
    return _data_dir("schemas")


def migrations_dir() -> Path:
    return _data_dir("migrations")
