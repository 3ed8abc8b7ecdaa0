"""promise quarantine: promise versions that crash evaluation, and the scopes they skipped

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quarantines",
        sa.Column("promise_id", sa.String(length=256), nullable=False),
        sa.Column("version", sa.String(length=256), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("promise_id", "version"),
    )
    op.create_table(
        "quarantine_backlog",
        sa.Column("promise_id", sa.String(length=256), nullable=False),
        sa.Column("scope", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("promise_id", "scope"),
    )


def downgrade() -> None:
    op.drop_table("quarantine_backlog")
    op.drop_table("quarantines")
