"""Queries over merged_models (`hub merge` outputs) and their lineage rows."""

from __future__ import annotations

import json

from sqlalchemy import delete, insert, select

from hub.registry.schema import lineage, merged_models


def row_by_name(conn, name: str):
    return conn.execute(select(merged_models).where(merged_models.c.name == name)).first()


def insert_model(conn, *, name: str, path: str, base_id, base_name, base_path, dtype, size_bytes: int,
                 num_shards: int, recipe: dict, hub_version: str, stamp, drift: dict | None,
                 replaces: int | None = None) -> int:
    """Record a merged model (dropping row ``replaces`` and its lineage first); returns its id."""
    if replaces is not None:
        conn.execute(delete(lineage).where((lineage.c.child_type == "model") & (lineage.c.child_id == replaces)))
        conn.execute(delete(merged_models).where(merged_models.c.id == replaces))
    return conn.execute(insert(merged_models).values(
        name=name, path=path, base_id=base_id, base_name=base_name, base_path=base_path, dtype=dtype,
        size_bytes=size_bytes, num_shards=num_shards, recipe_json=json.dumps(recipe, sort_keys=True),
        hub_version=hub_version, created_at=stamp, drift_json=json.dumps(drift) if drift is not None else None,
    )).inserted_primary_key[0]
