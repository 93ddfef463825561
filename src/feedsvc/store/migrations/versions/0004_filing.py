"""A durable "to file" mark on entries: filing survives a kill between store and classify.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

Every existing entry starts unfiled, so the first publish after the upgrade
refiles everything once: it repairs entries an earlier version stored and
never filed because the process was killed in between.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        batch.add_column(
            sa.Column("filed", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_index(
        "ix_entries_unfiled",
        "entries",
        ["id"],
        sqlite_where=sa.text("NOT filed"),
        postgresql_where=sa.text("NOT filed"),
    )


def downgrade() -> None:
    op.drop_index("ix_entries_unfiled", table_name="entries")
    with op.batch_alter_table("entries") as batch:
        batch.drop_column("filed")
