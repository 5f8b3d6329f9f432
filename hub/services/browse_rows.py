"""The adapter browser's row type, sort keys and Source labels (shared by the paged SQL
queries and the in-memory index)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlalchemy import case, func, select

from hub.flags import FLAGS
from hub.registry import adapters as q
from hub.registry.schema import adapter_tags, adapters, base_models

_FLAG_ORDER = FLAGS
PENDING_SOURCE = "…"   # a Source label not read yet


def _flag_rank():
    # rows sort by which flags they carry (as a bit pattern), portable to PostgreSQL booleans
    total = None
    for bit, flag in enumerate(_FLAG_ORDER):
        term = case((q.FLAG_COLUMNS[flag].is_(True), 1 << bit), else_=0)
        total = term if total is None else total + term
    return total


def _first_tag():
    return (select(func.min(adapter_tags.c.tag)).where(adapter_tags.c.adapter_id == adapters.c.id)
            .scalar_subquery())


# Every column the browser shows can be sorted on.
BROWSE_SORTS = {
    "name": lambda: (adapters.c.name,),
    "base": lambda: (func.coalesce(base_models.c.name, adapters.c.base_model),),
    "r": lambda: (adapters.c.r,),
    "alpha": lambda: (adapters.c.lora_alpha,),
    "targets": lambda: (adapters.c.target_modules,),
    "flags": lambda: (_flag_rank(),),
    "size": lambda: (adapters.c.size_bytes,),
    "tags": lambda: (_first_tag(),),
    "source": lambda: (adapters.c.source_kind, func.coalesce(adapters.c.source_repo, adapters.c.source_path)),
    "created": lambda: (adapters.c.created_at,),
    "params": lambda: (adapters.c.param_count,),
}

_SOURCE_COLUMNS = (adapters.c.id, adapters.c.source_kind, adapters.c.source_repo, adapters.c.source_revision,
                   adapters.c.source_path)
_ROW_COLUMNS = (
    adapters.c.id, adapters.c.name, adapters.c.base_model, base_models.c.name.label("base_name"), adapters.c.r,
    adapters.c.lora_alpha, adapters.c.target_modules, adapters.c.size_bytes, adapters.c.source_kind,
    adapters.c.source_repo, adapters.c.source_revision, adapters.c.source_path,
    *(col.label(f"flag_{flag}") for flag, col in q.FLAG_COLUMNS.items()),
)


@dataclass(frozen=True)
class AdapterRow:
    """One line of the adapter browser: what the table shows, nothing parsed from JSON."""

    name: str
    base: str
    r: int
    alpha: float
    targets: tuple[str, ...]
    flags: tuple[str, ...]
    size_bytes: int
    tags: tuple[str, ...]
    source: str


def _source_label(m) -> str:
    if m["source_repo"]:
        rev = m["source_revision"]
        return f"hf:{m['source_repo']}" + (f"@{rev}" if rev and rev != "main" else "")
    if m["source_kind"] == "local" and m["source_path"]:
        return os.path.basename(m["source_path"].rstrip("/"))
    return m["source_kind"] or "-"
