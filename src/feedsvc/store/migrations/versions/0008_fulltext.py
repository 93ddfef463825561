"""Full text of entries whose feed gives only a lead: where the content came from, and a
durable "to fetch" mark, so a kill between storing an entry and fetching its page loses
nothing.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

Existing entries keep their content, from the feed, and are not fetched.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        batch.add_column(
            sa.Column("content_source", sa.String(16), nullable=False, server_default="feed")
        )
        batch.add_column(
            sa.Column("full_text_due", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("full_text_error", sa.Text()))
        batch.add_column(sa.Column("full_text_at", sa.DateTime(timezone=True)))
    op.create_index(
        "ix_entries_full_text_due",
        "entries",
        ["source_id", "id"],
        sqlite_where=sa.text("full_text_due = 1"),
        postgresql_where=sa.text("full_text_due"),
    )


def downgrade() -> None:
    op.drop_index("ix_entries_full_text_due", table_name="entries")
    with op.batch_alter_table("entries") as batch:
        batch.drop_column("full_text_at")
        batch.drop_column("full_text_error")
        batch.drop_column("full_text_due")
        batch.drop_column("content_source")
