"""Queries over remotes: the Hub repos an adapter was pulled from or pushed to."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import and_, insert, select, update

from hub.registry.schema import adapters, remotes


def _now() -> datetime:
    return datetime.now(timezone.utc)


def upsert(conn, adapter_id: int, direction: str, repo_id: str, revision: str, subfolder: str | None,
           commit: str | None, remote_commit: str | None) -> None:
    key = and_(remotes.c.adapter_id == adapter_id, remotes.c.direction == direction,
               remotes.c.repo_id == repo_id, remotes.c.revision == revision)
    values = {"subfolder": subfolder or None, "commit": commit, "remote_commit": remote_commit,
              "checked_at": _now(), "updated_at": _now()}
    if conn.execute(select(remotes.c.id).where(key)).first() is None:
        conn.execute(insert(remotes).values(adapter_id=adapter_id, direction=direction, repo_id=repo_id,
                                            revision=revision, **values))
    else:
        conn.execute(update(remotes).where(key).values(**values))


def pulled_at(conn, repo_id: str, subfolder: str, commit: str) -> str | None:
    """Name of an adapter already pulled from this repo folder at this commit."""
    row = conn.execute(
        select(adapters.c.name).select_from(remotes.join(adapters, remotes.c.adapter_id == adapters.c.id))
        .where(and_(remotes.c.direction == "pull", remotes.c.repo_id == repo_id, remotes.c.commit == commit,
                    (remotes.c.subfolder == subfolder) if subfolder else remotes.c.subfolder.is_(None)))
        .limit(1)).first()
    return row.name if row else None


def names_by_repo(conn) -> dict[str, set[str]]:
    """{repo id: names of the adapters tied to it}, by a recorded remote or by their source."""
    known: dict[str, set[str]] = {}
    for repo_id, adapter_name in conn.execute(
            select(remotes.c.repo_id, adapters.c.name)
            .select_from(remotes.join(adapters, remotes.c.adapter_id == adapters.c.id))):
        known.setdefault(repo_id, set()).add(adapter_name)
    for repo_id, adapter_name in conn.execute(
            select(adapters.c.source_repo, adapters.c.name).where(adapters.c.source_repo.is_not(None))):
        known.setdefault(repo_id, set()).add(adapter_name)
    return known


def set_remote_commit(conn, remote_id: int, commit: str | None) -> None:
    conn.execute(update(remotes).where(remotes.c.id == remote_id).values(remote_commit=commit, checked_at=_now()))
