"""Story lists: an index on the display date (the publisher's, else first seen), then id.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03

``/``, ``/c/{category}`` and their cursors read stories newest first by
``coalesce(published_at, first_seen_at), id``; without this index every page sorted
the whole table (about 60 ms at 50,000 entries on SQLite).
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_entries_display_date",
        "entries",
        [sa.text("coalesce(published_at, first_seen_at)"), "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_entries_display_date", table_name="entries")
