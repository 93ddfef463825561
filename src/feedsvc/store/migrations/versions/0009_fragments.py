"""Entry fragments: each entry's part of the feeds in each format, rendered once and reused.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

A cache: an empty table only means the next publish renders every entry once.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "fragments",
        sa.Column("entry_id", Id, nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("context", sa.String(32), nullable=False),
        sa.Column("item_id", sa.Text(), nullable=False),
        sa.Column("published_at", When, nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.Column("rss", sa.LargeBinary()),
        sa.Column("atom", sa.LargeBinary()),
        sa.Column("json", sa.LargeBinary()),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["entries.id"], name="fk_fragments_entry_id_entries", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("entry_id", name="pk_fragments"),
    )


def downgrade() -> None:
    op.drop_table("fragments")
