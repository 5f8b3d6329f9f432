"""The reading statements, by name, with their values as named bind parameters.

hub.registry.reading runs them: through SQLAlchemy (any database), or on SQLite as the
text SQLAlchemy compiled from them once (hub.registry.fastread), so that a reading
command need not import SQLAlchemy. A statement's name and parameters are its contract;
its SQL is written only here.
"""

from __future__ import annotations

from typing import Callable

from sqlalchemy import and_, bindparam, func, select

from hub.registry.schema import (
    adapter_aliases, adapter_base_fits, adapter_files, adapter_tags, adapters, base_models, lineage,
    merged_models, remotes,
)


def _adapter_rows():
    """Adapter rows with the name of their registered base."""
    return (select(adapters, base_models.c.name.label("base_name"))
            .select_from(adapters.outerjoin(base_models, adapters.c.base_id == base_models.c.id)))


def _named():
    return adapters.c.name == bindparam("name")


def _remote_rows():
    return (select(remotes, adapters.c.name)
            .select_from(remotes.join(adapters, remotes.c.adapter_id == adapters.c.id))
            .order_by(adapters.c.name, remotes.c.id))


def _fits_of_base():
    return and_(adapter_base_fits.c.base_id == bindparam("base_id"), adapter_base_fits.c.compatible.is_(True))


STATEMENTS: dict[str, Callable] = {
    # one adapter row (plus base_name) by reference: hub.refs NAME, NAME@N, NAME@ALIAS
    "adapter.latest": lambda: _adapter_rows().where(and_(_named(), adapters.c.latest.is_(True))),
    "adapter.version": lambda: _adapter_rows().where(and_(_named(), adapters.c.version == bindparam("version"))),
    "adapter.alias": lambda: _adapter_rows().where(and_(_named(), adapters.c.id == select(
        adapter_aliases.c.adapter_id).where(and_(adapter_aliases.c.name == bindparam("name"),
                                                 adapter_aliases.c.alias == bindparam("alias")))
        .scalar_subquery())),
    "adapter.versions": lambda: _adapter_rows().where(_named()).order_by(adapters.c.version),
    "adapter.count": lambda: select(func.count().label("n")).select_from(adapters),
    # what belongs to one adapter row, or to every version of a name
    "adapter.tags": lambda: select(adapter_tags.c.adapter_id, adapter_tags.c.tag)
        .where(adapter_tags.c.adapter_id == bindparam("adapter_id")),
    "name.tags": lambda: select(adapter_tags.c.adapter_id, adapter_tags.c.tag)
        .select_from(adapter_tags.join(adapters, adapter_tags.c.adapter_id == adapters.c.id)).where(_named()),
    "adapter.files": lambda: select(adapter_files.c.name, adapter_files.c.size, adapter_files.c.sha256)
        .where(adapter_files.c.adapter_id == bindparam("adapter_id")).order_by(adapter_files.c.name),
    "adapter.remotes": lambda: select(remotes).where(remotes.c.adapter_id == bindparam("adapter_id"))
        .order_by(remotes.c.id),
    "adapter.aliases": lambda: select(adapter_aliases.c.adapter_id, adapter_aliases.c.alias)
        .where(adapter_aliases.c.adapter_id == bindparam("adapter_id")).order_by(adapter_aliases.c.alias),
    "name.aliases": lambda: select(adapter_aliases.c.adapter_id, adapter_aliases.c.alias)
        .where(adapter_aliases.c.name == bindparam("name")).order_by(adapter_aliases.c.alias),
    "lineage": lambda: select(lineage).where(and_(lineage.c.child_type == bindparam("child_type"),
                                                  lineage.c.child_id == bindparam("child_id")))
        .order_by(lineage.c.position),
    # bases and the verdicts stored against them
    "bases": lambda: select(base_models).order_by(base_models.c.name),
    "base.by_name": lambda: select(base_models).where(base_models.c.name == bindparam("name")),
    "bases.fit_counts": lambda: select(adapter_base_fits.c.base_id, func.count().label("n"))
        .where(adapter_base_fits.c.compatible.is_(True)).group_by(adapter_base_fits.c.base_id),
    "base.fit_count": lambda: select(func.count().label("n")).select_from(adapter_base_fits).where(_fits_of_base()),
    "base.verdicts": lambda: select(adapters.c.id, adapters.c.name, adapters.c.updated_at,
                                    adapter_base_fits.c.findings_json, adapter_base_fits.c.checked_at)
        .select_from(adapters.outerjoin(adapter_base_fits, and_(
            adapter_base_fits.c.adapter_id == adapters.c.id, adapter_base_fits.c.base_id == bindparam("base_id"))))
        .order_by(adapters.c.name),
    # merged models
    "models": lambda: select(merged_models).order_by(merged_models.c.created_at.desc(), merged_models.c.name),
    "model.by_name": lambda: select(merged_models).where(merged_models.c.name == bindparam("name")),
    # recorded remotes (what `hub status` shows before asking the Hub)
    "remotes": _remote_rows,
    "remotes.of_name": lambda: _remote_rows().where(_named()),
}


def statement(name: str):
    return STATEMENTS[name]()


def result_kinds(stmt) -> dict[str, str]:
    """The result columns whose values SQLAlchemy converts on SQLite: DateTime from text,
    Boolean from 0/1 (the fast path converts the same columns the same way)."""
    from sqlalchemy import Boolean, DateTime

    out = {}
    for column in stmt.selected_columns:
        if isinstance(column.type, DateTime):
            out[column.key] = "datetime"
        elif isinstance(column.type, Boolean):
            out[column.key] = "bool"
    return out
