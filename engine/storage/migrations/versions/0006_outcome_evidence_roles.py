"""outcome evidence roles: the part each evidence record played (start, stop, cancel, ...)

Existing outcomes keep NULL: their roles cannot be computed without evaluating them. They
are filled in when their scope is next evaluated; until then readers infer them from the
evidence's position (engine.explain).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("roles", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.drop_column("roles")
