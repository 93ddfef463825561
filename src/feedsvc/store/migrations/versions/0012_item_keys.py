"""Item keys: the hash of each item of a source's last document, so a re-fetched feed
parses only its new and edited items.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03

Derived from documents, which are not stored: an empty table only means each source's
next changed document is parsed whole once, which fills it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "item_keys",
        sa.Column("source_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(32), nullable=False),
        sa.Column("entry_id", Id, nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name="fk_item_keys_source_id_sources", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["entries.id"], name="fk_item_keys_entry_id_entries", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("source_id", "key", name="pk_item_keys"),
    )
    op.create_index("ix_item_keys_entry_id", "item_keys", ["entry_id"])


def downgrade() -> None:
    op.drop_index("ix_item_keys_entry_id", table_name="item_keys")
    op.drop_table("item_keys")
