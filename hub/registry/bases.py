"""Queries over base_models. Functions take an open Connection; the service decides transactions."""

from __future__ import annotations

import json

from sqlalchemy import and_, delete, insert, select, update

from hub.registry.schema import adapter_base_fits, adapters, base_models


def id_by_name(conn, name: str) -> int | None:
    return conn.execute(select(base_models.c.id).where(base_models.c.name == name)).scalar()


def id_by_path(conn, path: str) -> int | None:
    return conn.execute(select(base_models.c.id).where(base_models.c.path == path)).scalar()


def name_by_path(conn, path: str) -> str | None:
    return conn.execute(select(base_models.c.name).where(base_models.c.path == path)).scalar()


def located(conn, name: str, folder: str | None):
    """(id, name, path) of the base named ``name``, else of the one registered at ``folder``."""
    columns = select(base_models.c.id, base_models.c.name, base_models.c.path)
    row = conn.execute(columns.where(base_models.c.name == name)).first()
    if row is None and folder is not None:
        row = conn.execute(columns.where(base_models.c.path == folder)).first()
    return row


def insert_base(conn, info, name: str, folder: str, source: dict, shapes_json: str, stamp) -> int:
    return conn.execute(insert(base_models).values(
        name=name, path=folder, architecture=info.architecture, model_type=info.model_type,
        dtype=info.dtype, vocab_size=info.vocab_size, hidden_size=info.hidden_size,
        num_layers=info.num_layers, tie_word_embeddings=info.tie_word_embeddings,
        quantization_json=json.dumps(info.quantization) if info.quantization else None,
        quant_scheme_json=json.dumps(info.quant_scheme) if info.quant_scheme else None,
        shape_signature=info.shape_signature, shapes_json=shapes_json,
        config_json=json.dumps(info.config, sort_keys=True), size_bytes=info.size_bytes,
        source_kind=source.get("kind", "local"), source_repo=source.get("repo"),
        source_revision=source.get("revision"), source_commit=source.get("commit"), created_at=stamp,
    )).inserted_primary_key[0]


def row_by_id(conn, base_id: int):
    return conn.execute(select(base_models).where(base_models.c.id == base_id)).first()


def stamp(conn, base_id: int) -> tuple:
    """(name, shape signature, created_at): what identifies a base's content across id reuse."""
    return tuple(conn.execute(select(base_models.c.name, base_models.c.shape_signature, base_models.c.created_at)
                              .where(base_models.c.id == base_id)).first() or ())


def ids(conn, by: str = "name") -> list[int]:
    return [r[0] for r in conn.execute(select(base_models.c.id).order_by(base_models.c[by]))]


def names_by_id(conn) -> dict[int, str]:
    return dict(conn.execute(select(base_models.c.id, base_models.c.name)).all())


def names_and_paths(conn) -> dict[int, tuple[str, str | None]]:
    return {r.id: (r.name, r.path) for r in conn.execute(select(base_models.c.id, base_models.c.name,
                                                                 base_models.c.path))}


def delete_base(conn, base_id: int) -> None:
    """Drop a base and its verdicts; adapters that pointed at it fall back to another base they fit, if any."""
    orphans = [r[0] for r in conn.execute(select(adapters.c.id).where(adapters.c.base_id == base_id))]
    conn.execute(delete(adapter_base_fits).where(adapter_base_fits.c.base_id == base_id))
    conn.execute(update(adapters).where(adapters.c.base_id == base_id).values(base_id=None))
    conn.execute(delete(base_models).where(base_models.c.id == base_id))
    for adapter_id in orphans:
        other = conn.execute(select(adapter_base_fits.c.base_id).where(and_(
            adapter_base_fits.c.adapter_id == adapter_id, adapter_base_fits.c.compatible.is_(True)))
            .order_by(adapter_base_fits.c.base_id).limit(1)).scalar()
        if other is not None:
            conn.execute(update(adapters).where(adapters.c.id == adapter_id).values(base_id=other))
