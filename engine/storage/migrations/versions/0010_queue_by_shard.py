"""the queue by shard: several workers split the scopes between them (engine.shards)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SHARDS = 16  # engine.shards.SHARDS when this migration was written


def upgrade() -> None:
    with warnings.catch_warnings():  # the copy's primary key is the new one, as intended
        warnings.filterwarnings("ignore", "Table '_alembic_tmp_pending_records' specifies")
        with op.batch_alter_table("pending_records", recreate="always") as table:
            table.add_column(sa.Column("shard", sa.Integer(), nullable=False, server_default="0"))
            table.create_primary_key("pending_records_pkey", ["record_id", "shard"])
    # A record queued before: which shards its scopes fall in depends on the catalog, which
    # a migration does not know, so it is queued in every shard (a shard where it has no
    # scope only moves the clock).
    for number in range(1, SHARDS):
        op.execute(
            "INSERT INTO pending_records (record_id, shard, backfill) "
            f"SELECT record_id, {number}, backfill FROM pending_records WHERE shard = 0"
        )
    op.create_index("ix_pending_records_shard", "pending_records", ["shard", "backfill"])


def downgrade() -> None:
    op.drop_index("ix_pending_records_shard", "pending_records")
    op.execute(  # one row per record is kept: a queued record stays queued
        "DELETE FROM pending_records WHERE shard > (SELECT min(p.shard) FROM pending_records p "
        "WHERE p.record_id = pending_records.record_id)"
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Table '_alembic_tmp_pending_records' specifies")
        with op.batch_alter_table("pending_records", recreate="always") as table:
            table.drop_column("shard")
            table.create_primary_key("pending_records_pkey", ["record_id"])
