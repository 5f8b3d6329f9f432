"""Versions and aliases of a name: which row ``NAME[@VERSION|ALIAS]`` means, and the
writes that keep one latest version per name and aliases pointing at versions."""

from __future__ import annotations

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from hub.refs import Ref
from hub.registry import reading
from hub.registry.schema import adapter_aliases, adapters


def version_label(row) -> str:
    """NAME for version 1, NAME@N for later versions: a ref that names exactly this row."""
    return row.name if row.version == 1 else f"{row.name}@{row.version}"


def resolve(conn: Connection, ref: Ref):
    """The adapters row (plus base_name) ``ref`` names, or None (hub.registry.reading)."""
    return reading.resolve(reading.Alchemy(conn), ref)


def resolve_text(conn: Connection, text: str):
    """Like resolve, for text that may not be a name at all (then None)."""
    return reading.resolve_text(reading.Alchemy(conn), text)


def rows_of(conn: Connection, name: str) -> list:
    """Every version of ``name``, oldest first."""
    return reading.versions_of(reading.Alchemy(conn), name)


def next_version(conn: Connection, name: str) -> int:
    top = conn.execute(select(func.max(adapters.c.version)).where(adapters.c.name == name)).scalar()
    return (top or 0) + 1


def mark_latest(conn: Connection, name: str) -> None:
    """The highest version of ``name`` is its latest (after an add or a removal)."""
    top = conn.execute(select(func.max(adapters.c.version)).where(adapters.c.name == name)).scalar()
    if top is None:
        return
    conn.execute(update(adapters).where(and_(adapters.c.name == name, adapters.c.version != top,
                                             adapters.c.latest.is_(True))).values(latest=False))
    conn.execute(update(adapters).where(and_(adapters.c.name == name, adapters.c.version == top))
                 .values(latest=True))


def aliases_by_adapter(conn: Connection, name: str) -> dict[int, list[str]]:
    return reading.aliases_by_adapter(reading.Alchemy(conn), name)


def aliases_of(conn: Connection, adapter_id: int) -> list[str]:
    return reading.aliases_of(reading.Alchemy(conn), adapter_id)


def all_aliases(conn: Connection) -> list[tuple[str, str, int]]:
    """(name, alias, adapter_id) of every alias."""
    return [tuple(r) for r in conn.execute(select(adapter_aliases.c.name, adapter_aliases.c.alias,
                                                  adapter_aliases.c.adapter_id))]


def set_alias(conn: Connection, name: str, alias: str, adapter_id: int, stamp) -> None:
    """Point ``name@alias`` at ``adapter_id`` (made or moved)."""
    conn.execute(delete(adapter_aliases).where(and_(adapter_aliases.c.name == name,
                                                    adapter_aliases.c.alias == alias)))
    conn.execute(insert(adapter_aliases).values(name=name, alias=alias, adapter_id=adapter_id, updated_at=stamp))


def drop_alias(conn: Connection, name: str, alias: str) -> bool:
    return conn.execute(delete(adapter_aliases).where(and_(adapter_aliases.c.name == name,
                                                           adapter_aliases.c.alias == alias))).rowcount > 0


def drop_aliases_of(conn: Connection, adapter_id: int) -> None:
    conn.execute(delete(adapter_aliases).where(adapter_aliases.c.adapter_id == adapter_id))


def rename_all(conn: Connection, name: str, new_name: str, stamp) -> int:
    """Rename every version of ``name`` and its aliases; returns how many versions."""
    n = conn.execute(update(adapters).where(adapters.c.name == name).values(name=new_name, updated_at=stamp)).rowcount
    conn.execute(update(adapter_aliases).where(adapter_aliases.c.name == name).values(name=new_name))
    return n


__all__ = ["resolve", "resolve_text", "rows_of", "next_version", "mark_latest", "aliases_by_adapter", "aliases_of",
           "all_aliases", "set_alias", "drop_alias", "drop_aliases_of", "rename_all"]
