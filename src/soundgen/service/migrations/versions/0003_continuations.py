"""Jobs that continue audio (issue 17): what they continue and how many seconds of it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the nullable ``continues`` and ``prompt_seconds`` columns (older jobs continued nothing: NULL)."""
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("continues", sa.String(64), nullable=True))
        batch.add_column(sa.Column("prompt_seconds", sa.Float(), nullable=True))


def downgrade() -> None:
    """Drop the columns."""
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("prompt_seconds")
        batch.drop_column("continues")
