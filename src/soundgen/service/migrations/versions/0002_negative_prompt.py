"""Jobs keep their negative prompt (issue 17): the text classifier-free guidance steered away from.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the nullable ``negative_prompt`` column (older jobs had none: NULL)."""
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("negative_prompt", sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop the column."""
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("negative_prompt")
