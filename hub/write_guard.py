"""One check for every path hub writes outside HUB_HOME (merge --out, export folders,
GGUF files, Modelfiles, resized/extracted/fixed exports, quantized merges ...).

    from hub.write_guard import check_write_target
    out = check_write_target(hub, out, sources=[base_dir, *adapter_dirs], overwrite=overwrite)

``hub`` is a hub.service.Hub (anything with ``.home``, ``.db`` and ``.db.url`` works;
``None`` skips the registry rules). Returns the absolute target path to write to, or
raises UsageError (one line: what, where, what to do). Refused, whether or not the
target exists and whatever ``overwrite`` says: ``/``, the user's home directory (and
the folders above it), HUB_HOME, anything inside it and any folder that contains it,
the registry database file, a registered base model's folder and a linked adapter's
folder (and anything inside or above them), and ``sources``, the folders or files the
command itself reads. Symlinks are resolved before comparing, and the path as given is
compared too. An earlier merge output or export is none of these, so overwriting it
stays allowed, until it is registered as a base.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from hub.errors import AlreadyExists, UsageError

_FIX = "choose another output path"


def check_write_target(hub, target: str | os.PathLike, *, sources: Iterable[str | os.PathLike] = (),
                       overwrite: bool = False) -> Path:
    given = Path(os.path.abspath(Path(target).expanduser()))
    forms = {given, given.resolve()}
    protected = [(label, p, inside_ok) for label, folder, inside_ok in _protected(hub, sources)
                 for p in _forms(folder)]
    for label, p, _ in protected:           # exact matches first: they name the place best
        if p in forms:
            raise UsageError(f"refusing to write over {label}", str(target), _FIX)
    for label, p, inside_ok in protected:
        if any(t in p.parents for t in forms):
            raise UsageError(f"refusing to write over a folder that holds {label}", str(target), _FIX)
        if not inside_ok and any(p in t.parents for t in forms):
            raise UsageError(f"refusing to write inside {label}", str(target), _FIX)
    if not overwrite and given.exists() and (not given.is_dir() or any(given.iterdir())):
        raise AlreadyExists("the output already exists and is not empty", str(target),
                            "choose another path, or pass --overwrite to replace it")
    return given


def _forms(folder) -> set[Path]:
    p = Path(os.path.abspath(Path(folder).expanduser()))
    return {p, p.resolve()}


def _protected(hub, sources) -> list[tuple[str, str, bool]]:
    """(label, folder, writing inside it is fine)."""
    out: list[tuple[str, str, bool]] = []
    if hub is not None:
        out.append(("HUB_HOME", str(hub.home), False))
        db_file = getattr(getattr(hub, "db", None), "file", None)   # the SQLite file (registry.db.Database)
        if db_file:
            out.append(("the registry database", str(db_file), False))
        from hub.registry.adapters import protected_folders

        with hub.db.read() as conn:
            out += [(f"{kind} {name!r}", folder, False) for kind, name, folder in protected_folders(conn)]
    out += [("a source of this command", str(src), False) for src in sources if src]
    out += [("your home directory", os.path.expanduser("~"), True), ("the root folder", "/", True)]
    return out
