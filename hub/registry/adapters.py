"""Queries over the adapter tables. Functions take an open Connection; the service
decides transactions."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from sqlalchemy import and_, bindparam, delete, exists, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import Alias

from hub.registry import reading, versions
from hub.flags import DECLARED as DECLARED_FLAGS
from hub.listing.filters import ListFilter, list_params, search_words
from hub.registry.schema import (
    adapter_base_fits, adapter_files, adapter_tags, adapter_targets, adapters, base_models, lineage, merged_models,
    remotes, trash_blobs,
)

FLAG_COLUMNS = {f.name: adapters.c[f.column] for f in DECLARED_FLAGS}
SORT_COLUMNS = {
    "name": adapters.c.name, "r": adapters.c.r, "rank": adapters.c.r, "alpha": adapters.c.lora_alpha,
    "size": adapters.c.size_bytes, "created": adapters.c.created_at, "base": adapters.c.base_model,
    "layers": adapters.c.num_layers, "params": adapters.c.param_count,
}


def now() -> datetime:
    return datetime.now(timezone.utc)


# Per-module maps and findings: tens of KB per adapter. Listings that do not print them
# leave them out.
DETAIL_COLUMNS = frozenset({"modules_json", "saved_tensors_json", "findings_json"})


class _Listing(Alias):
    """The adapters table, read through ix_adapters_listing on SQLite (see schema.py):
    its planner prefers the narrow name index plus a lookup per row, and each lookup
    walks that row's JSON. Rendered as plain ``adapters`` on other databases."""

    inherit_cache = True


@compiles(_Listing)
def _render_listing(element, compiler, from_linter=None, **kw):
    if from_linter is not None:  # joins name the alias: lint it, not the table underneath
        from_linter.froms[element._de_clone()] = element.name
    return compiler.process(element.element, **kw)


@compiles(_Listing, "sqlite")
def _render_listing_sqlite(element, compiler, **kw):
    text = _render_listing(element, compiler, **kw)
    return f"{text} INDEXED BY ix_adapters_listing" if kw.get("asfrom") else text


_listing = _Listing._construct(adapters, name="adapters")


def listing_alias():
    """The adapters table read through its covering listing index (for page queries)."""
    return _listing


def list_conditions(f: ListFilter, t=adapters) -> list:
    """The WHERE terms of ``f`` over ``t`` (see _conditions)."""
    return _conditions(f, t)


def _conditions(f: ListFilter, t=adapters) -> list:
    """The WHERE terms of ``f`` over ``t`` (the adapters table or the listing alias); values
    are bound under the names of filters.list_params, so that fastread can rebind them."""
    p = {name: bindparam(name, value) for name, value in list_params(f).items()}
    conds = [] if f.all_versions else [t.c.latest.is_(True)]  # one row per name: its latest version
    if f.base:
        conds.append(or_(t.c.base_model == p["base"], base_models.c.name == p["base"],
                         # ilike: SQLite's LIKE ignores ASCII case, PostgreSQL's does not
                         t.c.base_model.ilike(p["base_like"], escape="\\")))
    if f.rank is not None:
        conds.append(t.c.r == p["rank"])
    if f.alpha is not None:
        conds.append(t.c.lora_alpha == p["alpha"])
    for i in range(len(f.targets)):
        conds.append(exists().where(and_(adapter_targets.c.adapter_id == t.c.id,
                                         adapter_targets.c.target.ilike(p[f"target_{i}"], escape="\\"))))
    for i in range(len(f.tags)):
        conds.append(exists().where(and_(adapter_tags.c.adapter_id == t.c.id,
                                         adapter_tags.c.tag.ilike(p[f"tag_{i}"], escape="\\"))))
    for flag in f.flags:
        conds.append(t.c[FLAG_COLUMNS[flag].name].is_(True))
    for flag in f.no_flags:
        conds.append(t.c[FLAG_COLUMNS[flag].name].is_(False))
    for i in range(len(search_words(f.search))):
        word = p[f"search_{i}"]
        conds.append(or_(t.c.name.ilike(word, escape="\\"), t.c.description.ilike(word, escape="\\"),
                         exists().where(and_(adapter_targets.c.adapter_id == t.c.id,
                                             adapter_targets.c.target.ilike(word, escape="\\")))))
    if f.fits is not None:
        conds.append(exists().where(and_(adapter_base_fits.c.adapter_id == t.c.id,
                                         adapter_base_fits.c.base_id == p["fits"],
                                         adapter_base_fits.c.compatible.is_(True))))
    return conds


def _order(f: ListFilter, t=adapters) -> tuple:
    column = t.c[SORT_COLUMNS[f.sort].name]
    return column.desc() if f.desc else column.asc(), t.c.name.asc(), t.c.version.asc()


def list_query(f: ListFilter, details: bool = True):
    """Adapters matching ``f`` (all columns, plus base_name); without ``details``, the
    DETAIL_COLUMNS are left out."""
    columns = [c for c in adapters.c if details or c.name not in DETAIL_COLUMNS]
    q = select(*columns, base_models.c.name.label("base_name"))
    # Matches are found in the listing index, then only their rows are read.
    t = _listing
    matching = select(t.c.id).select_from(t.outerjoin(base_models, t.c.base_id == base_models.c.id))
    conds = _conditions(f, t)
    if conds:
        matching = matching.where(and_(*conds))
    if f.limit is None and not f.offset:
        q = q.select_from(adapters.outerjoin(base_models, adapters.c.base_id == base_models.c.id))
        if conds:
            q = q.where(adapters.c.id.in_(matching.correlate(None)))
        return q.order_by(*_order(f))
    # A page: its ids first, in order, so that sorting carries ids rather than whole rows
    # with their JSON.
    page = matching.order_by(*_order(f, t))
    if f.limit is not None:
        page = page.limit(bindparam("limit", f.limit))
    if f.offset:
        page = page.offset(bindparam("offset", f.offset))
    page = page.subquery("page")
    source = page.join(adapters, adapters.c.id == page.c.id).outerjoin(
        base_models, adapters.c.base_id == base_models.c.id)
    return q.select_from(source).order_by(*_order(f))


def tags_of_ids_query():
    """(adapter_id, tag) of the adapters whose ids are bound as one JSON array, ``ids``
    (SQLite's json_each): one statement for any number of ids, so that its text can be
    compiled once (hub.registry.fastread reads a listing's tags with it)."""
    ids = func.json_each(bindparam("ids")).table_valued("value")
    return (select(adapter_tags.c.adapter_id, adapter_tags.c.tag)
            .where(adapter_tags.c.adapter_id.in_(select(ids.c.value))))


def list_rows(conn: Connection, f: ListFilter, details: bool = True) -> list:
    return conn.execute(list_query(f, details=details)).all()


def version_of(conn: Connection, adapter_id: int) -> int:
    return conn.execute(select(adapters.c.version).where(adapters.c.id == adapter_id)).scalar_one()


def children(conn: Connection, parent_ids, kind: str = "adapter") -> list:
    """(name, weight) of the adapters (``kind`` "adapter") or merged models ("model") recorded
    as made from any of the adapters ``parent_ids``, by name."""
    table = adapters if kind == "adapter" else merged_models
    return conn.execute(
        select(table.c.name, lineage.c.weight)
        .select_from(lineage.join(table, and_(lineage.c.child_type == kind, lineage.c.child_id == table.c.id)))
        .where(and_(lineage.c.parent_type == "adapter", lineage.c.parent_id.in_(list(parent_ids))))
        .order_by(table.c.name)).all()


def count(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(adapters)).scalar_one()


def tags_for(conn: Connection, ids) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    ids = list(ids)
    for start in range(0, len(ids), 900):  # stay under SQLite's bound-parameter limit
        chunk = ids[start:start + 900]
        for aid, tag in conn.execute(select(adapter_tags.c.adapter_id, adapter_tags.c.tag)
                                     .where(adapter_tags.c.adapter_id.in_(chunk))):
            out.setdefault(aid, []).append(tag)
    return out


def get_row(conn: Connection, name: str):
    """The row ``NAME[@VERSION|ALIAS]`` names (hub.refs), or None (also for text that is no name)."""
    return reading.resolve_text(reading.Alchemy(conn), name)


def name_taken(conn: Connection, name: str) -> bool:
    return conn.execute(select(adapters.c.id).where(adapters.c.name == name).limit(1)).first() is not None


def get_by_sha(conn: Connection, sha256: str):
    return conn.execute(select(adapters.c.id, adapters.c.name, adapters.c.version)
                        .where(adapters.c.sha256 == sha256)).first()


def files_of(conn: Connection, adapter_id: int) -> list[dict]:
    return reading.files_of(reading.Alchemy(conn), adapter_id)


def lineage_of(conn: Connection, child_type: str, child_id: int) -> list[dict]:
    return reading.lineage_of(reading.Alchemy(conn), child_type, child_id)


def remotes_of(conn: Connection, adapter_id: int) -> list[dict]:
    return reading.remotes_of(reading.Alchemy(conn), adapter_id)


def insert_adapter(conn: Connection, info, name: str, *, storage: str, path: str | None, source: dict,
                   tags=(), recipe: dict | None = None, description: str | None = None, version: int = 1) -> int:
    """``version`` > 1 adds a version to an existing name; call versions.mark_latest after."""
    stamp = now()
    modules = {
        p: {"r": m.r, "alpha": m.alpha, "in_features": m.in_features, "out_features": m.out_features,
            "kind": m.kind, "scaling": m.scaling, "dora": m.dora, "lora_bias": m.lora_bias}
        for p, m in info.modules.items()
    }
    # parameters rather than .values(): the statement compiles once per process instead of
    # coercing forty values into a new statement per adapter (1 ms each in `hub scan`)
    adapter_id = conn.execute(insert(adapters), dict(
        name=name, version=version, latest=version == 1, sha256=info.sha256, base_model=info.base_model, peft_type=info.peft_type,
        task_type=info.task_type, r=info.r, lora_alpha=info.lora_alpha, scaling=info.scaling,
        use_rslora=info.use_rslora, use_dora=info.use_dora, fan_in_fan_out=info.fan_in_fan_out,
        lora_bias=info.lora_bias, has_embedding_lora=info.has_embedding_lora,
        has_modules_to_save=bool(info.modules_to_save), target_modules=",".join(info.target_modules),
        num_layers=info.num_layers, num_modules=len(info.modules), param_count=info.param_count,
        size_bytes=info.size_bytes, dtype=info.dtype, config_json=json.dumps(info.config, sort_keys=True),
        modules_json=json.dumps(modules), saved_tensors_json=json.dumps({k: list(v) for k, v in info.saved_tensors.items()}),
        findings_json=json.dumps([f.to_dict() for f in info.findings]), storage=storage, path=path,
        source_kind=source.get("kind", "local"), source_path=source.get("path"), source_repo=source.get("repo"),
        source_revision=source.get("revision"), source_commit=source.get("commit"),
        source_subfolder=source.get("subfolder"), recipe_json=json.dumps(recipe) if recipe else None,
        description=description, created_at=stamp, updated_at=stamp,
    )).inserted_primary_key[0]
    if info.files:
        conn.execute(insert(adapter_files), [
            {"adapter_id": adapter_id, "name": f.name, "size": f.size, "sha256": f.sha256} for f in info.files])
    if info.target_modules:
        conn.execute(insert(adapter_targets), [{"adapter_id": adapter_id, "target": t} for t in info.target_modules])
    if tags:
        conn.execute(insert(adapter_tags), [{"adapter_id": adapter_id, "tag": t} for t in sorted(set(tags))])
    return adapter_id


def delete_adapter(conn: Connection, adapter_id: int) -> bool:
    """False if there was no such adapter."""
    # explicit child deletes: SQLite only cascades with foreign_keys=ON, and other
    # tools may open the file without it
    for table in (adapter_files, adapter_targets, adapter_tags, adapter_base_fits, remotes):
        conn.execute(delete(table).where(table.c.adapter_id == adapter_id))
    versions.drop_aliases_of(conn, adapter_id)
    conn.execute(update(lineage).where(and_(lineage.c.parent_type == "adapter", lineage.c.parent_id == adapter_id))
                 .values(parent_id=None))
    conn.execute(delete(lineage).where(and_(lineage.c.child_type == "adapter", lineage.c.child_id == adapter_id)))
    name = conn.execute(select(adapters.c.name).where(adapters.c.id == adapter_id)).scalar()
    if name is None:
        return False
    conn.execute(delete(adapters).where(adapters.c.id == adapter_id))
    versions.mark_latest(conn, name)   # removing the latest version makes the one before it latest
    return True


def referenced_blobs(conn: Connection, shas, except_adapter=None) -> set[str]:
    """Which of ``shas`` some adapter's files (other than those of ``except_adapter``: an id
    or a collection of ids) or a trash entry use."""
    if isinstance(except_adapter, int):
        except_adapter = [except_adapter]
    shas = list(shas)
    out: set[str] = set()
    for start in range(0, len(shas), 900):
        chunk = shas[start:start + 900]
        query = select(adapter_files.c.sha256).where(adapter_files.c.sha256.in_(chunk))
        if except_adapter is not None:
            query = query.where(adapter_files.c.adapter_id.not_in(list(except_adapter)))
        out.update(conn.execute(query).scalars())
        out.update(conn.execute(select(trash_blobs.c.sha256).where(trash_blobs.c.sha256.in_(chunk))).scalars())
    return out


def all_referenced_blobs(conn: Connection) -> set[str]:
    """Every store file a store-backed adapter or a trash entry uses."""
    used = set(conn.execute(select(adapter_files.c.sha256).where(
        adapter_files.c.adapter_id.in_(select(adapters.c.id).where(adapters.c.storage == "store")))).scalars())
    return used | set(conn.execute(select(trash_blobs.c.sha256)).scalars())


def set_tags(conn: Connection, adapter_id: int, add=(), remove=()) -> bool:
    """False if the adapter is gone. Locks its row first: on PostgreSQL two writers adding
    the same tag would both see it missing and one would fail on the primary key (SQLite's
    BEGIN IMMEDIATE already serialises writers; FOR UPDATE is not emitted there)."""
    if conn.execute(select(adapters.c.id).where(adapters.c.id == adapter_id).with_for_update()).first() is None:
        return False
    if remove:
        conn.execute(delete(adapter_tags).where(and_(adapter_tags.c.adapter_id == adapter_id,
                                                     adapter_tags.c.tag.in_(list(remove)))))
    have = set(conn.execute(select(adapter_tags.c.tag).where(adapter_tags.c.adapter_id == adapter_id)).scalars())
    new = sorted(set(add) - have)
    if new:
        conn.execute(insert(adapter_tags), [{"adapter_id": adapter_id, "tag": t} for t in new])
    conn.execute(update(adapters).where(adapters.c.id == adapter_id).values(updated_at=now()))
    return True


def rename(conn: Connection, name: str, new_name: str) -> int:
    """Rename every version of ``name`` (and its aliases)."""
    return versions.rename_all(conn, name, new_name, now())


def add_lineage(conn: Connection, child_type: str, child_id: int, parents) -> None:
    """parents: iterable of dicts with type, id, name, sha256, weight."""
    rows = [{"child_type": child_type, "child_id": child_id, "parent_type": p["type"], "parent_id": p.get("id"),
             "parent_name": p["name"], "parent_sha256": p.get("sha256"), "parent_version": p.get("version"),
             "weight": p.get("weight"), "position": i}
            for i, p in enumerate(parents)]
    if rows:
        conn.execute(insert(lineage), rows)


def protected_folders(conn: Connection) -> list[tuple[str, str, str]]:
    """(kind, name, folder) of every folder the registry reads in place: registered
    bases and linked adapters. hub.write_guard refuses to write over or into them."""
    bases = conn.execute(select(base_models.c.name, base_models.c.path).where(base_models.c.path.is_not(None)))
    linked = conn.execute(select(adapters.c.name, adapters.c.path)
                          .where((adapters.c.storage == "link") & adapters.c.path.is_not(None)))
    return ([("registered base", r.name, r.path) for r in bases]
            + [("linked adapter", r.name, r.path) for r in linked])
