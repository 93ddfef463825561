"""Tone-blind search: the index of every entry's folded words, and entries by last edit.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03

SQLite gets an FTS5 table, PostgreSQL a tsvector table with a GIN index (see
``store.search``); every entry already stored is indexed here, with the rule
every later insert and edit uses (``search.index_text``).
"""

import sqlalchemy as sa
from alembic import op

from feedsvc.store import search

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        op.execute(
            "CREATE TABLE entry_search ("
            " entry_id BIGINT PRIMARY KEY REFERENCES entries (id) ON DELETE CASCADE,"
            " words TEXT NOT NULL, title_words INTEGER NOT NULL,"
            " doc TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', words)) STORED)"
        )
        op.execute("CREATE INDEX ix_entry_search_doc ON entry_search USING gin (doc)")
    else:
        op.execute(
            "CREATE VIRTUAL TABLE entry_search USING fts5(doc, title_words UNINDEXED,"
            " tokenize = 'unicode61 remove_diacritics 0', prefix = '2 3', columnsize = 0)"
        )
    op.create_index("ix_entries_changed_at", "entries", ["changed_at"])
    search.rebuild(conn)


def downgrade() -> None:
    op.drop_index("ix_entries_changed_at", table_name="entries")
    op.execute(sa.text("DROP TABLE entry_search"))
