"""Editions of sent digests (view in browser, the archive), and which one a delivery carried.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "editions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("schedule", sa.String(64), nullable=False),
        sa.Column("period", When, nullable=False),
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("sections", sa.JSON(), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_editions"),
    )
    op.create_index("ix_editions_schedule_period", "editions", ["schedule", "period"])
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("edition", sa.String(32)))
    op.create_index("ix_deliveries_edition", "deliveries", ["edition"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_edition", table_name="deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("edition")
    op.drop_index("ix_editions_schedule_period", table_name="editions")
    op.drop_table("editions")
