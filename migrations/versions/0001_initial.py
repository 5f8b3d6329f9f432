"""initial schema: adapters, files, targets, tags, bases, fits, merged models, lineage, remotes

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "base_models",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("path", sa.Text),
        sa.Column("architecture", sa.String(200)),
        sa.Column("model_type", sa.String(100)),
        sa.Column("dtype", sa.String(16)),
        sa.Column("vocab_size", sa.Integer),
        sa.Column("hidden_size", sa.Integer),
        sa.Column("num_layers", sa.Integer),
        sa.Column("tie_word_embeddings", sa.Boolean, nullable=False),
        sa.Column("quantization_json", sa.Text),
        sa.Column("shape_signature", sa.String(64), nullable=False, index=True),
        sa.Column("shapes_json", sa.Text, nullable=False),
        sa.Column("config_json", sa.Text, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("source_kind", sa.String(16), nullable=False),
        sa.Column("source_repo", sa.String(300)),
        sa.Column("source_revision", sa.String(300)),
        sa.Column("source_commit", sa.String(64)),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "adapters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("base_model", sa.String(500)),
        sa.Column("base_id", sa.Integer, sa.ForeignKey("base_models.id", ondelete="SET NULL")),
        sa.Column("peft_type", sa.String(32), nullable=False),
        sa.Column("task_type", sa.String(64)),
        sa.Column("r", sa.Integer, nullable=False, index=True),
        sa.Column("lora_alpha", sa.Float, nullable=False, index=True),
        sa.Column("scaling", sa.Float, nullable=False),
        sa.Column("use_rslora", sa.Boolean, nullable=False),
        sa.Column("use_dora", sa.Boolean, nullable=False),
        sa.Column("fan_in_fan_out", sa.Boolean, nullable=False),
        sa.Column("lora_bias", sa.Boolean, nullable=False),
        sa.Column("has_embedding_lora", sa.Boolean, nullable=False),
        sa.Column("has_modules_to_save", sa.Boolean, nullable=False),
        sa.Column("target_modules", sa.String(2000), nullable=False),
        sa.Column("num_layers", sa.Integer, nullable=False),
        sa.Column("num_modules", sa.Integer, nullable=False),
        sa.Column("param_count", sa.BigInteger, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False, index=True),
        sa.Column("dtype", sa.String(16)),
        sa.Column("config_json", sa.Text, nullable=False),
        sa.Column("modules_json", sa.Text, nullable=False),
        sa.Column("saved_tensors_json", sa.Text, nullable=False),
        sa.Column("findings_json", sa.Text, nullable=False),
        sa.Column("storage", sa.String(8), nullable=False),
        sa.Column("path", sa.Text),
        sa.Column("source_kind", sa.String(16), nullable=False),
        sa.Column("source_path", sa.Text),
        sa.Column("source_repo", sa.String(300)),
        sa.Column("source_revision", sa.String(300)),
        sa.Column("source_commit", sa.String(64)),
        sa.Column("source_subfolder", sa.Text),
        sa.Column("recipe_json", sa.Text),
        sa.Column("description", sa.Text),
        sa.Column("created_at", TS, nullable=False, index=True),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "adapter_files",
        sa.Column("adapter_id", sa.Integer, sa.ForeignKey("adapters.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False, index=True),
    )
    op.create_table(
        "adapter_targets",
        sa.Column("adapter_id", sa.Integer, sa.ForeignKey("adapters.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("target", sa.String(200), primary_key=True),
    )
    op.create_index("ix_adapter_targets_target", "adapter_targets", ["target"])
    op.create_table(
        "adapter_tags",
        sa.Column("adapter_id", sa.Integer, sa.ForeignKey("adapters.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("tag", sa.String(100), primary_key=True),
    )
    op.create_index("ix_adapter_tags_tag", "adapter_tags", ["tag"])
    op.create_table(
        "adapter_base_fits",
        sa.Column("adapter_id", sa.Integer, sa.ForeignKey("adapters.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("base_id", sa.Integer, sa.ForeignKey("base_models.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("compatible", sa.Boolean, nullable=False),
        sa.Column("findings_json", sa.Text, nullable=False),
        sa.Column("checked_at", TS, nullable=False),
    )
    op.create_index("ix_fits_base", "adapter_base_fits", ["base_id", "compatible"])
    op.create_table(
        "merged_models",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("base_id", sa.Integer, sa.ForeignKey("base_models.id", ondelete="SET NULL")),
        sa.Column("base_name", sa.String(500)),
        sa.Column("base_path", sa.Text),
        sa.Column("dtype", sa.String(16)),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("num_shards", sa.Integer, nullable=False),
        sa.Column("recipe_json", sa.Text),
        sa.Column("hub_version", sa.String(32)),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "lineage",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("child_type", sa.String(16), nullable=False),
        sa.Column("child_id", sa.Integer, nullable=False),
        sa.Column("parent_type", sa.String(16), nullable=False),
        sa.Column("parent_id", sa.Integer),
        sa.Column("parent_name", sa.String(500), nullable=False),
        sa.Column("parent_sha256", sa.String(64)),
        sa.Column("weight", sa.Float),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.create_index("ix_lineage_child", "lineage", ["child_type", "child_id"])
    op.create_index("ix_lineage_parent", "lineage", ["parent_type", "parent_id"])
    op.create_table(
        "remotes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("adapter_id", sa.Integer, sa.ForeignKey("adapters.id", ondelete="CASCADE"), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("repo_id", sa.String(300), nullable=False),
        sa.Column("revision", sa.String(300), nullable=False),
        sa.Column("subfolder", sa.Text),
        sa.Column("commit", sa.String(64)),
        sa.Column("remote_commit", sa.String(64)),
        sa.Column("checked_at", TS),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("adapter_id", "direction", "repo_id", "revision", name="uq_remotes"),
    )


def downgrade() -> None:
    for table in ("remotes", "lineage", "merged_models", "adapter_base_fits", "adapter_tags",
                  "adapter_targets", "adapter_files", "adapters", "base_models"):
        op.drop_table(table)
