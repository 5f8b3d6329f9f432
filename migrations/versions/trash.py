"""trash: removed adapters wait here until restored, emptied, or past the retention period

Revision ID: trash
Revises: quantized_merges
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = "trash"
down_revision = "quantized_merges"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trash",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("trashed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("snapshot_json", sa.Text, nullable=False),
    )
    op.create_index("ix_trash_name", "trash", ["name"])
    op.create_table(
        "trash_blobs",
        sa.Column("trash_id", sa.Integer, sa.ForeignKey("trash.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("sha256", sa.String(64), primary_key=True),
    )
    op.create_index("ix_trash_blobs_sha256", "trash_blobs", ["sha256"])


def downgrade() -> None:
    op.drop_index("ix_trash_blobs_sha256", table_name="trash_blobs")
    op.drop_table("trash_blobs")
    op.drop_index("ix_trash_name", table_name="trash")
    op.drop_table("trash")
