"""Table definitions. Changing them needs a new Alembic revision in migrations/versions
(tests/test_migrations.py fails when the two disagree)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger, Boolean, Column, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text,
    UniqueConstraint,
)

# The Alembic head this code expects; opening a registry at another revision runs the migrations.
HEAD_REVISION = "trash"

metadata = MetaData()

base_models = Table(
    "base_models", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("path", Text),
    Column("architecture", String(200)),
    Column("model_type", String(100)),
    Column("dtype", String(16)),
    Column("vocab_size", Integer),
    Column("hidden_size", Integer),
    Column("num_layers", Integer),
    Column("tie_word_embeddings", Boolean, nullable=False, default=False),
    Column("quantization_json", Text),
    Column("quant_scheme_json", Text),                 # bitsandbytes: method, block size, double quant, dtypes
    Column("shape_signature", String(64), nullable=False, index=True),
    Column("shapes_json", Text, nullable=False),       # {param name: [shape, dtype]}
    Column("config_json", Text, nullable=False),
    Column("size_bytes", BigInteger, nullable=False, default=0),
    Column("source_kind", String(16), nullable=False, default="local"),
    Column("source_repo", String(300)),
    Column("source_revision", String(300)),
    Column("source_commit", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

adapters = Table(
    "adapters", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("version", Integer, nullable=False, default=1),     # 1, 2, ... within a name
    Column("latest", Boolean, nullable=False, default=True),   # the highest version of its name
    Column("sha256", String(64), nullable=False, unique=True),
    Column("base_model", String(500)),                  # as declared in adapter_config.json
    Column("base_id", Integer, ForeignKey("base_models.id", ondelete="SET NULL")),  # as resolved by shapes
    Column("peft_type", String(32), nullable=False),
    Column("task_type", String(64)),
    Column("r", Integer, nullable=False, index=True),
    Column("lora_alpha", Float, nullable=False, index=True),
    Column("scaling", Float, nullable=False),
    Column("use_rslora", Boolean, nullable=False, default=False),
    Column("use_dora", Boolean, nullable=False, default=False),
    Column("fan_in_fan_out", Boolean, nullable=False, default=False),
    Column("lora_bias", Boolean, nullable=False, default=False),
    Column("has_embedding_lora", Boolean, nullable=False, default=False),
    Column("has_modules_to_save", Boolean, nullable=False, default=False),
    Column("target_modules", String(2000), nullable=False),   # sorted suffixes, comma-joined
    Column("num_layers", Integer, nullable=False, default=0),
    Column("num_modules", Integer, nullable=False, default=0),
    Column("param_count", BigInteger, nullable=False, default=0),
    Column("size_bytes", BigInteger, nullable=False, default=0, index=True),
    Column("dtype", String(16)),
    Column("config_json", Text, nullable=False),
    Column("modules_json", Text, nullable=False),       # {module path: {r, alpha, in_features, out_features, ...}}
    Column("saved_tensors_json", Text, nullable=False, default="{}"),
    Column("findings_json", Text, nullable=False, default="[]"),
    Column("storage", String(8), nullable=False, default="store"),  # store | link
    Column("path", Text),                               # the folder, for linked adapters
    Column("source_kind", String(16), nullable=False, default="local"),  # local | hub | combine
    Column("source_path", Text),
    Column("source_repo", String(300)),
    Column("source_revision", String(300)),
    Column("source_commit", String(64)),
    Column("source_subfolder", Text),
    Column("recipe_json", Text),
    Column("description", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("name", "version", name="uq_adapters_name_version"),
)

# Every column `hub list` filters or sorts on, in name order: a page of a large registry
# is found in this index alone (hub.registry.adapters.list_query names it). SQLite keeps
# an adapter's JSON columns (tens of KB) inside its row, so scanning the table reads them
# all: 1-4 s at 100,000 adapters against ~20 ms here. SQLite only: PostgreSQL moves large
# values out of the row (TOAST), and its btree could not hold a long description.
SQLITE_ONLY_INDEXES = frozenset({"ix_adapters_listing"})
LISTING_COLUMNS = (
    "name", "base_model", "base_id", "r", "lora_alpha", "use_rslora", "use_dora", "has_embedding_lora",
    "has_modules_to_save", "lora_bias", "fan_in_fan_out", "size_bytes", "created_at", "num_layers", "param_count",
    "description", "latest", "version",
)
Index("ix_adapters_listing", *(adapters.c[c] for c in LISTING_COLUMNS)).ddl_if(dialect="sqlite")


def include_object_for(dialect: str):
    """Alembic include_object hook: SQLite-only indexes do not exist on other databases."""

    def include(obj, name, type_, reflected, compare_to) -> bool:
        return not (type_ == "index" and name in SQLITE_ONLY_INDEXES and dialect != "sqlite")

    return include


adapter_files = Table(
    "adapter_files", metadata,
    Column("adapter_id", Integer, ForeignKey("adapters.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False, index=True),
)

adapter_targets = Table(
    "adapter_targets", metadata,
    Column("adapter_id", Integer, ForeignKey("adapters.id", ondelete="CASCADE"), primary_key=True),
    Column("target", String(200), primary_key=True),
    Index("ix_adapter_targets_target", "target"),
)

adapter_tags = Table(
    "adapter_tags", metadata,
    Column("adapter_id", Integer, ForeignKey("adapters.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(100), primary_key=True),
    Index("ix_adapter_tags_tag", "tag"),
)

adapter_base_fits = Table(
    "adapter_base_fits", metadata,
    Column("adapter_id", Integer, ForeignKey("adapters.id", ondelete="CASCADE"), primary_key=True),
    Column("base_id", Integer, ForeignKey("base_models.id", ondelete="CASCADE"), primary_key=True),
    Column("compatible", Boolean, nullable=False),
    Column("findings_json", Text, nullable=False, default="[]"),
    Column("checked_at", DateTime(timezone=True), nullable=False),
    Index("ix_fits_base", "base_id", "compatible"),
)

merged_models = Table(
    "merged_models", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("path", Text, nullable=False),
    Column("base_id", Integer, ForeignKey("base_models.id", ondelete="SET NULL")),
    Column("base_name", String(500)),
    Column("base_path", Text),
    Column("dtype", String(16)),
    Column("size_bytes", BigInteger, nullable=False, default=0),
    Column("num_shards", Integer, nullable=False, default=1),
    Column("recipe_json", Text),
    Column("drift_json", Text),                         # quantized merges: hub.merge.quantized.Drift
    Column("hub_version", String(32)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Who was made from whom: a combined adapter from its parents, a merged model from a
# base and adapters. Parent names and hashes are copied so lineage outlives removals.
lineage = Table(
    "lineage", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("child_type", String(16), nullable=False),    # adapter | model
    Column("child_id", Integer, nullable=False),
    Column("parent_type", String(16), nullable=False),   # adapter | base
    Column("parent_id", Integer),
    Column("parent_name", String(500), nullable=False),
    Column("parent_sha256", String(64)),
    Column("parent_version", Integer),                   # the exact version of an adapter parent
    Column("weight", Float),
    Column("position", Integer, nullable=False, default=0),
    Index("ix_lineage_child", "child_type", "child_id"),
    Index("ix_lineage_parent", "parent_type", "parent_id"),
)

# NAME@ALIAS -> one version of NAME (the alias is unique per name).
adapter_aliases = Table(
    "adapter_aliases", metadata,
    Column("name", String(200), primary_key=True),
    Column("alias", String(100), primary_key=True),
    Column("adapter_id", Integer, ForeignKey("adapters.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

remotes = Table(
    "remotes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("adapter_id", Integer, ForeignKey("adapters.id", ondelete="CASCADE"), nullable=False),
    Column("direction", String(8), nullable=False),      # pull | push
    Column("repo_id", String(300), nullable=False),
    Column("revision", String(300), nullable=False),
    Column("subfolder", Text),
    Column("commit", String(64)),                         # what we have
    Column("remote_commit", String(64)),                  # what the remote had when last asked
    Column("checked_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("adapter_id", "direction", "repo_id", "revision", name="uq_remotes"),
)

# One row per fact about the registry itself; "registry_id" binds the store to it (hub.registry.binding).
registry_info = Table(
    "registry_info", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# Removed adapters wait here (`hub rm` moves them; `hub trash restore|empty`; `hub doctor`
# empties entries past the retention period). The row and its child rows are kept as one
# JSON snapshot; trash_blobs names the store files they need, so nothing deletes those
# while the entry exists.
trash = Table(
    "trash", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size_bytes", BigInteger, nullable=False, default=0),
    Column("trashed_at", DateTime(timezone=True), nullable=False),
    Column("snapshot_json", Text, nullable=False),
    Index("ix_trash_name", "name"),
)

trash_blobs = Table(
    "trash_blobs", metadata,
    Column("trash_id", Integer, ForeignKey("trash.id", ondelete="CASCADE"), primary_key=True),
    Column("sha256", String(64), primary_key=True),
    Index("ix_trash_blobs_sha256", "sha256"),
)
