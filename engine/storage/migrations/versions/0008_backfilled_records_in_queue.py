"""backfilled records in the queue: records sent as history alert only for recent outcomes

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pending_records") as table:
        table.add_column(
            sa.Column("backfill", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("pending_records") as table:
        table.drop_column("backfill")
