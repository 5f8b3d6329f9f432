"""covering index for `hub list` pages on SQLite (ix_adapters_listing)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# as hub.registry.schema.LISTING_COLUMNS was at this revision
COLUMNS = [
    "name", "base_model", "base_id", "r", "lora_alpha", "use_rslora", "use_dora", "has_embedding_lora",
    "has_modules_to_save", "lora_bias", "fan_in_fan_out", "size_bytes", "created_at", "num_layers", "param_count",
    "description",
]


def upgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        op.create_index("ix_adapters_listing", "adapters", COLUMNS)


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        op.drop_index("ix_adapters_listing", table_name="adapters")
