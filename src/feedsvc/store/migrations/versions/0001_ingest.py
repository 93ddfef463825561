"""Sources and their entries.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("config_url", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("title", sa.Text()),
        sa.Column("site_url", sa.Text()),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("warning", sa.Text()),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("etag", sa.Text()),
        sa.Column("last_modified", sa.Text()),
        sa.Column("body_hash", sa.String(64)),
        sa.Column("first_polled_at", When),
        sa.Column("last_polled_at", When),
        sa.Column("next_poll_at", When),
        sa.Column("retry_after", When),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", When),
        sa.PrimaryKeyConstraint("id", name="pk_sources"),
    )
    op.create_index("ix_sources_due", "sources", ["active", "next_poll_at"])
    op.create_table(
        "entries",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("source_id", sa.String(64), nullable=False),
        sa.Column("identity", sa.Text(), nullable=False),
        sa.Column("guid", sa.Text()),
        sa.Column("guid_is_permalink", sa.Boolean(), nullable=False),
        sa.Column("link", sa.Text()),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("author", sa.Text()),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("enclosures", sa.JSON(), nullable=False),
        sa.Column("image", sa.Text()),
        sa.Column("published_at", When),
        sa.Column("feed_updated_at", When),
        sa.Column("date_flag", sa.String(16)),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("first_seen_at", When, nullable=False),
        sa.Column("changed_at", When, nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("backlog", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name="fk_entries_source_id_sources",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_entries"),
        sa.UniqueConstraint("source_id", "identity", name="uq_entries_source_id_identity"),
    )
    op.create_index("ix_entries_first_seen_at", "entries", ["first_seen_at"])


def downgrade() -> None:
    op.drop_index("ix_entries_first_seen_at", table_name="entries")
    op.drop_table("entries")
    op.drop_index("ix_sources_due", table_name="sources")
    op.drop_table("sources")
