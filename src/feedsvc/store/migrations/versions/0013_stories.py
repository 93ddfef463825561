"""Story identity: what detection keeps of each entry, its clusters, series and related stories.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03

Entries already stored get their story rows from ``feedsvc db upgrade`` (and from
any publish), which detects every entry that has none (``store.stories``): the
rows come from the entries' text, so this migration only makes the tables.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def _entry(column: str, table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["entries.id"], name=f"fk_{table}_{column}_entries", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "story_entries",
        sa.Column("entry_id", Id, nullable=False),
        sa.Column("source_id", sa.String(64), nullable=False),
        sa.Column("published_at", When, nullable=False),
        sa.Column("cluster_id", sa.BigInteger(), nullable=False),
        sa.Column("series_id", sa.BigInteger()),
        sa.Column("series_part", sa.Integer()),
        sa.Column("kicker", sa.Text(), nullable=False),
        sa.Column("exact", sa.LargeBinary(), nullable=False),
        sa.Column("shingles", sa.LargeBinary(), nullable=False),
        sa.Column("names", sa.LargeBinary(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        _entry("entry_id", "story_entries"),
        sa.PrimaryKeyConstraint("entry_id", name="pk_story_entries"),
    )
    op.create_index("ix_story_entries_cluster_id", "story_entries", ["cluster_id"])
    op.create_index("ix_story_entries_series_id", "story_entries", ["series_id"])
    op.create_index(
        "ix_story_entries_source_id_published_at", "story_entries", ["source_id", "published_at"]
    )
    op.create_table(
        "story_bands",
        sa.Column("band_key", sa.BigInteger(), nullable=False),
        sa.Column("entry_id", Id, nullable=False),
        sa.Column("published_at", When, nullable=False),
        _entry("entry_id", "story_bands"),
        sa.PrimaryKeyConstraint("band_key", "entry_id", name="pk_story_bands"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_story_bands_entry_id", "story_bands", ["entry_id"])
    op.create_table(
        "story_terms",
        sa.Column("term", sa.BigInteger(), nullable=False),
        sa.Column("entry_id", Id, nullable=False),
        sa.Column("published_at", When, nullable=False),
        _entry("entry_id", "story_terms"),
        sa.PrimaryKeyConstraint("term", "entry_id", name="pk_story_terms"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_story_terms_term_published_at", "story_terms", ["term", "published_at"])
    op.create_index("ix_story_terms_entry_id", "story_terms", ["entry_id"])
    op.create_table(
        "story_term_counts",
        sa.Column("term", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("term", name="pk_story_term_counts"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "story_related",
        sa.Column("entry_id", Id, nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("related_id", Id, nullable=False),
        sa.Column("similarity", sa.Float(), nullable=False),
        _entry("entry_id", "story_related"),
        _entry("related_id", "story_related"),
        sa.PrimaryKeyConstraint("entry_id", "rank", name="pk_story_related"),
    )
    op.create_index("ix_story_related_related_id", "story_related", ["related_id"])


def downgrade() -> None:
    for table in ("story_related", "story_term_counts", "story_terms", "story_bands"):
        op.drop_table(table)
    op.drop_table("story_entries")
