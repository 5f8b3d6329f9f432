"""versions and aliases: every adapter becomes version 1 of its name; NAME@ALIAS table;
lineage names the exact parent version

Revision ID: versions_aliases
Revises: registry_identity
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = "versions_aliases"
down_revision = "registry_identity"
branch_labels = None
depends_on = None

# ix_adapters_listing (SQLite only) as hub.registry.schema.LISTING_COLUMNS was before and after
OLD_LISTING = [
    "name", "base_model", "base_id", "r", "lora_alpha", "use_rslora", "use_dora", "has_embedding_lora",
    "has_modules_to_save", "lora_bias", "fan_in_fan_out", "size_bytes", "created_at", "num_layers", "param_count",
    "description",
]
NEW_LISTING = OLD_LISTING + ["latest", "version"]
# names the unnamed UNIQUE(name) of 0001 when SQLite's batch mode reflects the table
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _old_name_unique() -> str:
    """The name the database gave UNIQUE(name) (PostgreSQL: adapters_name_key)."""
    for uc in sa.inspect(op.get_bind()).get_unique_constraints("adapters"):
        if uc["column_names"] == ["name"] and uc.get("name"):
            return uc["name"]
    return "uq_adapters_name"


def upgrade() -> None:
    sqlite = op.get_context().dialect.name == "sqlite"
    if sqlite:
        op.drop_index("ix_adapters_listing", table_name="adapters")
    unique = _old_name_unique()
    with op.batch_alter_table("adapters", naming_convention=NAMING) as batch:
        # every existing adapter is version 1 of its name, and so its latest
        batch.add_column(sa.Column("version", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("latest", sa.Boolean, nullable=False, server_default=sa.true()))
        batch.drop_constraint(unique, type_="unique")
        batch.create_unique_constraint("uq_adapters_name_version", ["name", "version"])
    with op.batch_alter_table("adapters") as batch:  # the code sets both; no defaults in the schema
        batch.alter_column("version", server_default=None)
        batch.alter_column("latest", server_default=None)
    if sqlite:
        op.create_index("ix_adapters_listing", "adapters", NEW_LISTING)
    op.create_table(
        "adapter_aliases",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("alias", sa.String(100), primary_key=True),
        sa.Column("adapter_id", sa.Integer, sa.ForeignKey("adapters.id", ondelete="CASCADE"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_adapter_aliases_adapter_id", "adapter_aliases", ["adapter_id"])
    with op.batch_alter_table("lineage") as batch:
        batch.add_column(sa.Column("parent_version", sa.Integer))
    # parents still registered were, until now, version 1 of their name
    op.execute("UPDATE lineage SET parent_version = 1 WHERE parent_type = 'adapter' AND parent_id IS NOT NULL")


def downgrade() -> None:
    sqlite = op.get_context().dialect.name == "sqlite"
    with op.batch_alter_table("lineage") as batch:
        batch.drop_column("parent_version")
    op.drop_index("ix_adapter_aliases_adapter_id", table_name="adapter_aliases")
    op.drop_table("adapter_aliases")
    if sqlite:
        op.drop_index("ix_adapters_listing", table_name="adapters")
    # only the latest version of each name survives a downgrade (names were unique before)
    op.execute("DELETE FROM adapters WHERE latest = false" if not sqlite else "DELETE FROM adapters WHERE latest = 0")
    with op.batch_alter_table("adapters") as batch:
        batch.drop_constraint("uq_adapters_name_version", type_="unique")
        batch.drop_column("latest")
        batch.drop_column("version")
        batch.create_unique_constraint("adapters_name_key" if not sqlite else "uq_adapters_name", ["name"])
    if sqlite:
        op.create_index("ix_adapters_listing", "adapters", OLD_LISTING)
