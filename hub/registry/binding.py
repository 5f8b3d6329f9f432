"""A store belongs to one registry.

Every registry holds a random id (table ``registry_info``, written by the migration that
creates it, for new and existing registries alike). The store under HUB_HOME records the
id of its registry in ``store/registry.json`` the first time this version opens the pair,
together with the registry's URL without credentials, so that a refusal can say where
the right registry is. Every Hub refuses to open:

- a registry whose id differs from the store's (``--db`` pointing elsewhere, a replaced
  or re-created registry file, a team member's shell without HUB_DATABASE_URL);
- a new, empty registry beside a store that already holds files or records an owner
  (nothing is created: a missing or empty SQLite file stays missing);
- an unbound store with files that the registry does not know at all.

`hub doctor --fix` would otherwise take every store file of another registry for an
orphan and delete it. Opening costs one small file read and one primary-key query.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from hub import atomic
from hub.doctor import STORE_MARKER as MARKER   # declared once, where doctor skips it
from hub.errors import StoreError
from hub.registry.schema import adapter_files, adapters, registry_info

_KEY = "registry_id"


def marker_path(store_dir: Path) -> Path:
    return Path(store_dir) / MARKER


def read_marker(store_dir: Path) -> dict | None:
    path = marker_path(store_dir)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StoreError(f"the store's registry record cannot be read ({exc})", str(path),
                         "restore it from a backup; it names the registry this store belongs to") from None
    if not isinstance(doc, dict) or not isinstance(doc.get(_KEY), str):
        raise StoreError("the store's registry record is damaged", str(path),
                         "restore it from a backup; it names the registry this store belongs to")
    return doc


def has_blobs(store_dir: Path) -> bool:
    root = Path(store_dir) / "sha256"
    try:
        return any(any(sub.iterdir()) for sub in root.iterdir() if sub.is_dir())
    except OSError:
        return False


def display_url(url: str) -> str:
    """The URL without user, password or query (it is stored and printed)."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as hub's redaction leaves it
        from hub.redact import without_userinfo

        return without_userinfo(url)
    # URL.set() treats None as "leave as is"; the namedtuple's _replace clears
    return parsed._replace(username=None, password=None, query={}).render_as_string(hide_password=True)


def _belongs_elsewhere(doc: dict, store_dir: Path, url: str) -> StoreError:
    owner = doc.get("registry") or "an unknown URL"
    return StoreError(f"this store belongs to registry {doc[_KEY][:12]} at {owner}, not to {display_url(url)}",
                      str(store_dir), f"set HUB_DATABASE_URL={owner} (or pass --db), or use another HUB_HOME")


def refuse_new_registry(store_dir: Path, url: str) -> None:
    """Before a registry is created: refuse when the store already has an owner or files."""
    doc = read_marker(store_dir)
    if doc is not None:
        raise _belongs_elsewhere(doc, store_dir, url)
    if has_blobs(store_dir):
        raise StoreError(f"the registry at {display_url(url)} does not exist or is empty, "
                         "but the store beside it holds adapter files", str(store_dir),
                         "set HUB_DATABASE_URL (or --db) to the registry that owns this store")


def registry_id(conn) -> str | None:
    return conn.execute(select(registry_info.c.value).where(registry_info.c.key == _KEY)).scalar()


def check(db, store_dir: Path) -> None:
    """After the registry is open and migrated: refuse a mismatch, bind a new pair."""
    doc = read_marker(store_dir)
    with db.read() as conn:
        rid = registry_id(conn)
        if doc is None and has_blobs(store_dir):
            known = _knows_store(conn, store_dir)
    if rid is None:
        raise StoreError("the registry has no id (its registry_info table was emptied)", display_url(db.url),
                         "restore the registry from a backup")
    if doc is not None:
        if doc[_KEY] != rid:
            raise _belongs_elsewhere(doc, store_dir, db.url)
        return
    if has_blobs(store_dir) and not known:
        raise StoreError(f"the store holds adapter files that the registry at {display_url(db.url)} does not know",
                         str(store_dir), "set HUB_DATABASE_URL (or --db) to the registry that owns this store")
    _write_marker(store_dir, rid, db.url)


def _knows_store(conn, store_dir: Path) -> bool:
    """An existing pair met for the first time: the registry names files that are in the store."""
    shas = conn.execute(select(adapter_files.c.sha256).join(adapters, adapters.c.id == adapter_files.c.adapter_id)
                        .where(adapters.c.storage == "store").limit(1000)).scalars()
    root = Path(store_dir) / "sha256"
    return any((root / sha[:2] / sha).is_file() for sha in shas)


def _write_marker(store_dir: Path, rid: str, url: str) -> None:
    path = marker_path(store_dir)
    doc = {_KEY: rid, "registry": display_url(url)}
    try:
        atomic.write_text(path, json.dumps(doc, indent=2) + "\n")
    except OSError:
        return   # a read-only store cannot be bound; it is checked again on the next open


def open_bound(db, store_dir: Path) -> None:
    """Migrate the registry when behind, refusing one that is not the store's."""
    from hub.registry.schema import HEAD_REVISION

    revision = None if db.is_new() else db.current_revision()
    if revision is None:
        refuse_new_registry(store_dir, db.url)
    if revision != HEAD_REVISION:
        db.upgrade()
    check(db, store_dir)
