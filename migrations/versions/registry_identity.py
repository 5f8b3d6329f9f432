"""registry identity: a random id that the store under HUB_HOME records, so that a store
is never read (or cleaned by `hub doctor --fix`) against another registry

Revision ID: registry_identity
Revises: 0002
Create Date: 2026-12-04
"""
import uuid

import sqlalchemy as sa
from alembic import op

revision = "registry_identity"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "registry_info",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    # new and existing registries alike get their id here, once
    op.bulk_insert(table, [{"key": "registry_id", "value": uuid.uuid4().hex}])


def downgrade() -> None:
    op.drop_table("registry_info")
