"""scope checkpoints: incremental evaluation continues each scope from its last record

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checkpoints",
        sa.Column("promise_id", sa.String(length=256), nullable=False),
        sa.Column("scope", sa.String(length=256), nullable=False),
        sa.Column("last_at_us", sa.BigInteger(), nullable=False),
        sa.Column("last_id", sa.String(length=256), nullable=False),
        sa.Column("version", sa.String(length=256), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("latest", sa.Boolean(), nullable=False),
        sa.Column("kept", sa.Boolean(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("promise_id", "scope", "last_at_us", "last_id"),
    )
    op.create_index("ix_checkpoints_latest", "checkpoints", ["promise_id", "scope", "latest"])
    op.create_index("ix_interactions_customer_at", "interactions", ["customer_id", "at_us"])
    op.create_index("ix_interactions_case_at", "interactions", ["case_id", "at_us"])
    with op.batch_alter_table("outcomes") as table:
        table.drop_index("ix_outcomes_promise_scope")
        table.create_index("ix_outcomes_promise_scope_opened", ["promise_id", "scope", "opened_at"])


def downgrade() -> None:
    with op.batch_alter_table("outcomes") as table:
        table.drop_index("ix_outcomes_promise_scope_opened")
        table.create_index("ix_outcomes_promise_scope", ["promise_id", "scope"])
    op.drop_index("ix_interactions_case_at", "interactions")
    op.drop_index("ix_interactions_customer_at", "interactions")
    op.drop_index("ix_checkpoints_latest", "checkpoints")
    op.drop_table("checkpoints")
