"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "engine_state",
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "interactions",
        sa.Column("id", sa.String(length=256), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("customer_id", sa.String(length=256), nullable=False),
        sa.Column("case_id", sa.String(length=256), nullable=True),
        sa.Column("channel", sa.String(length=256), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("type", sa.String(length=256), nullable=False),
        sa.Column("team", sa.String(length=256), nullable=True),
        sa.Column("agent", sa.String(length=256), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_interactions_at_us"), ["at_us"], unique=False)
        batch_op.create_index(batch_op.f("ix_interactions_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_interactions_customer_id"), ["customer_id"], unique=False
        )

    op.create_table(
        "outcome_revisions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("promise_id", sa.String(length=256), nullable=False),
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("old_state", sa.String(length=16), nullable=True),
        sa.Column("new_state", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.String(length=1024), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outcome_revisions", schema=None) as batch_op:
        batch_op.create_index("ix_revisions_promise_key", ["promise_id", "key"], unique=False)

    op.create_table(
        "outcomes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("promise_id", sa.String(length=256), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("owner", sa.String(length=256), nullable=False),
        sa.Column("scope", sa.String(length=256), nullable=False),
        sa.Column("customer_id", sa.String(length=256), nullable=True),
        sa.Column("channel", sa.String(length=256), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("warn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outcomes_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outcomes_decided_at"), ["decided_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_outcomes_owner"), ["owner"], unique=False)
        batch_op.create_index("ix_outcomes_promise_key", ["promise_id", "key"], unique=True)
        batch_op.create_index("ix_outcomes_promise_scope", ["promise_id", "scope"], unique=False)
        batch_op.create_index("ix_outcomes_state_due", ["state", "due_at"], unique=False)

    op.create_table(
        "promise_versions",
        sa.Column("promise_id", sa.String(length=256), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=256), nullable=False),
        sa.Column("owner", sa.String(length=256), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("promise_id", "version"),
    )
    op.create_table(
        "pending_records",
        sa.Column("record_id", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["interactions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("record_id"),
    )
    op.create_table(
        "scope_keys",
        sa.Column("field", sa.String(length=256), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.Column("record_id", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["interactions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("field", "value", "record_id"),
    )


def downgrade() -> None:
    op.drop_table("scope_keys")
    op.drop_table("pending_records")
    op.drop_table("promise_versions")
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.drop_index("ix_outcomes_state_due")
        batch_op.drop_index("ix_outcomes_promise_scope")
        batch_op.drop_index("ix_outcomes_promise_key")
        batch_op.drop_index(batch_op.f("ix_outcomes_owner"))
        batch_op.drop_index(batch_op.f("ix_outcomes_decided_at"))
        batch_op.drop_index(batch_op.f("ix_outcomes_customer_id"))

    op.drop_table("outcomes")
    with op.batch_alter_table("outcome_revisions", schema=None) as batch_op:
        batch_op.drop_index("ix_revisions_promise_key")

    op.drop_table("outcome_revisions")
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_interactions_customer_id"))
        batch_op.drop_index(batch_op.f("ix_interactions_case_id"))
        batch_op.drop_index(batch_op.f("ix_interactions_at_us"))

    op.drop_table("interactions")
    op.drop_table("engine_state")
