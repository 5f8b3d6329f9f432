"""quantized merges: a base's bitsandbytes scheme, a merged model's drift report

Revision ID: quantized_merges
Revises: versions_aliases
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = "quantized_merges"
down_revision = "versions_aliases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("base_models") as batch:
        batch.add_column(sa.Column("quant_scheme_json", sa.Text))
    with op.batch_alter_table("merged_models") as batch:
        batch.add_column(sa.Column("drift_json", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("merged_models") as batch:
        batch.drop_column("drift_json")
    with op.batch_alter_table("base_models") as batch:
        batch.drop_column("quant_scheme_json")
