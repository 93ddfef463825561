"""Topics that subscribers follow by email.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03

``subscribers.topics`` is a JSON array of the topics as typed (newsletter.topics);
every row already there follows none (``[]``), which is what it did before.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # add_column, not a batch: rebuilding subscribers on SQLite would cascade to deliveries.
    op.add_column(
        "subscribers", sa.Column("topics", sa.JSON(), nullable=False, server_default="[]")
    )


def downgrade() -> None:
    op.drop_column("subscribers", "topics")  # ALTER TABLE: a rebuild would cascade
