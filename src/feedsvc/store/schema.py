"""The tables, as SQLAlchemy Core metadata. Alembic migrations create them; this
module is what queries are written against (and what autogenerate compares to).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    func,
    text,
)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite has no time zones: stored naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only autoincrements a column declared exactly INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

sources = Table(
    "sources",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("config_url", Text, nullable=False),  # as written in config.yaml
    Column("url", Text, nullable=False),  # where it lives now, after permanent redirects
    Column("title", Text),
    Column("site_url", Text),
    Column("active", Boolean, nullable=False, default=True),  # still in config.yaml
    Column("status", String(16), nullable=False, default="new"),
    Column("last_error", Text),
    Column("warning", Text),  # a recoverable problem in the last body (malformed XML)
    Column("error_count", Integer, nullable=False, default=0),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("body_hash", String(64)),
    Column("first_polled_at", UTCDateTime),
    Column("last_polled_at", UTCDateTime),
    Column("next_poll_at", UTCDateTime),
    Column("retry_after", UTCDateTime),  # the server asked us not to come back before
    Column("lease_owner", String(64)),
    Column("lease_until", UTCDateTime),
    Column("paused_at", UTCDateTime),  # an operator paused it (ingest.operate); no claim takes it
    Column("paused_by", Text),
    Index("ix_sources_due", "active", "next_poll_at"),
)

# The outcome of each source's last polls (store.sources keeps POLL_HISTORY per source).
poll_history = Table(
    "poll_history",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source_id", String(64), ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("outcome", String(16), nullable=False),  # ok | new | error | retired
    Index("ix_poll_history_source_id", "source_id", "id"),
)

entries = Table(
    "entries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source_id", String(64), ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column("identity", Text, nullable=False),
    Column("guid", Text),
    Column("guid_is_permalink", Boolean, nullable=False, default=False),
    Column("link", Text),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False, default=""),
    Column("content", Text, nullable=False, default=""),
    Column("author", Text),
    Column("categories", JSON, nullable=False, default=list),
    Column("enclosures", JSON, nullable=False, default=list),
    Column("image", Text),
    Column("published_at", UTCDateTime),  # None: the feed gave no usable date
    Column("feed_updated_at", UTCDateTime),
    Column("date_flag", String(16)),
    Column("content_hash", String(64), nullable=False),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),  # last time its content changed
    Column("revision", Integer, nullable=False, default=0),  # edits seen since first stored
    Column("backlog", Boolean, nullable=False, default=False),  # old when its source was added
    # False until classified: stored and filed are two transactions, and a kill in
    # between must leave a mark that the next publish (or process) picks up.
    Column("filed", Boolean, nullable=False, default=False, server_default=false()),
    # Full text (ingest.fulltext): where ``content`` came from, "feed" or "article" (the
    # entry's page); the page is fetched after the entry is stored, so "to fetch" is a
    # mark that outlives a kill, like ``filed``. A failed fetch keeps the feed's lead.
    Column("content_source", String(16), nullable=False, default="feed", server_default="feed"),
    Column("full_text_due", Boolean, nullable=False, default=False, server_default=false()),
    Column("full_text_error", Text),
    Column("full_text_at", UTCDateTime),  # when the page was fetched (or failed)
    UniqueConstraint("source_id", "identity"),
    Index("ix_entries_first_seen_at", "first_seen_at"),
    Index("ix_entries_changed_at", "changed_at"),  # the newest edit: search caches' validator
)

# The story lists' order (store.reading): the publisher's date, else first seen, then id.
Index(
    "ix_entries_display_date",
    func.coalesce(entries.c.published_at, entries.c.first_seen_at),
    entries.c.id,
)

# Each item of a source's last document whose entry is stored, by the hash of its bytes
# (ingest._items): a re-fetched feed parses only the items not here. Replaced with every
# document parsed; deleting an entry (retention) deletes its items, so it is parsed again.
item_keys = Table(
    "item_keys",
    metadata,
    Column("source_id", String(64), ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(32), primary_key=True),
    Column(
        "entry_id", Id, ForeignKey("entries.id", ondelete="CASCADE"), nullable=False, index=True
    ),
)

Index(
    "ix_entries_unfiled",
    entries.c.id,
    sqlite_where=text("NOT filed"),
    postgresql_where=text("NOT filed"),
)

Index(
    "ix_entries_full_text_due",
    entries.c.source_id,
    entries.c.id,
    sqlite_where=text("full_text_due = 1"),  # the form SQLite matches
    postgresql_where=text("full_text_due"),
)

entry_categories = Table(
    "entry_categories",
    metadata,
    Column("entry_id", Id, ForeignKey("entries.id", ondelete="CASCADE"), primary_key=True),
    Column("category_id", String(64), primary_key=True),
    Index("ix_entry_categories_category_id", "category_id", "entry_id"),
)

documents = Table(
    "documents",
    metadata,
    Column("name", String(128), primary_key=True),  # "xa-hoi.rss", "all.json", "feeds.opml"
    Column("content_type", String(128), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("body_gzip", LargeBinary, nullable=False),  # compressed once, served many times
    Column("etag", String(64), nullable=False),
    Column("last_modified", UTCDateTime, nullable=False),  # moves only when the body changes
)

# Each entry's part of the feed documents, in each format, rendered once
# (publish.fragments): a feed is its head and these. Deleting an entry deletes them.
fragments = Table(
    "fragments",
    metadata,
    Column("entry_id", Id, ForeignKey("entries.id", ondelete="CASCADE"), primary_key=True),
    Column("revision", Integer, nullable=False),  # the entry's when it was rendered
    Column("context", String(32), nullable=False),  # publish.fragments.context_key
    Column("item_id", Text, nullable=False),
    Column("published_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("rss", LargeBinary),  # NULL: not rendered in that format (not configured)
    Column("atom", LargeBinary),
    Column("json", LargeBinary),
)

# Story identity (feedsvc.stories, store.stories): what detection keeps of each entry
# to compare later entries with, and what it decided. Rows go with their entry.

story_entries = Table(
    "story_entries",
    metadata,
    Column("entry_id", Id, ForeignKey("entries.id", ondelete="CASCADE"), primary_key=True),
    Column("source_id", String(64), nullable=False),
    Column("published_at", UTCDateTime, nullable=False),  # as detection read it
    Column("cluster_id", BigInteger, nullable=False),  # the entry id of its first member
    Column("series_id", BigInteger),  # the entry id of the series' first part
    Column("series_part", Integer),
    Column("kicker", Text, nullable=False, default=""),
    Column("exact", LargeBinary, nullable=False),  # signed 64-bit exact keys, packed
    Column("shingles", LargeBinary, nullable=False),  # 32-bit hashes, packed
    Column("names", LargeBinary, nullable=False),
    Column("vector", LargeBinary, nullable=False),  # (63-bit term, float32) pairs
    # Raised when what its feed items show of its story changes (a new member of its
    # cluster, a new part of its series): part of its fragments' revision.
    Column("revision", Integer, nullable=False, default=0),
    Index("ix_story_entries_cluster_id", "cluster_id"),
    Index("ix_story_entries_series_id", "series_id"),
    Index("ix_story_entries_source_id_published_at", "source_id", "published_at"),
)

# MinHash LSH band keys and exact keys (stories.minhash, stories.exact) per entry.
story_bands = Table(
    "story_bands",
    metadata,
    Column("band_key", BigInteger, primary_key=True),
    Column("entry_id", Id, ForeignKey("entries.id", ondelete="CASCADE"), primary_key=True),
    Column("published_at", UTCDateTime, nullable=False),
    Index("ix_story_bands_entry_id", "entry_id"),
    sqlite_with_rowid=False,  # the key is the row: one b-tree, not two
)

# The inverted index of entries' heaviest terms (stories.terms.POSTED_TERMS each).
story_terms = Table(
    "story_terms",
    metadata,
    Column("term", BigInteger, primary_key=True),
    Column("entry_id", Id, ForeignKey("entries.id", ondelete="CASCADE"), primary_key=True),
    Column("published_at", UTCDateTime, nullable=False),
    Index("ix_story_terms_term_published_at", "term", "published_at"),
    Index("ix_story_terms_entry_id", "entry_id"),
    sqlite_with_rowid=False,
)

# How many detected entries have each term (the IDF's document frequencies).
story_term_counts = Table(
    "story_term_counts",
    metadata,
    Column("term", BigInteger, primary_key=True),
    Column("count", Integer, nullable=False),
    sqlite_with_rowid=False,
)

# "Đọc thêm": up to three earlier stories per entry, best first.
story_related = Table(
    "story_related",
    metadata,
    Column("entry_id", Id, ForeignKey("entries.id", ondelete="CASCADE"), primary_key=True),
    Column("rank", Integer, primary_key=True),
    Column("related_id", Id, ForeignKey("entries.id", ondelete="CASCADE"), nullable=False),
    Column("similarity", Float, nullable=False),
    Index("ix_story_related_related_id", "related_id"),
)

settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

subscribers = Table(
    "subscribers",
    metadata,
    # AUTOINCREMENT on SQLite: without it the highest id is handed out again once its
    # row is deleted. PostgreSQL's sequences never go back.
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("email", Text, nullable=False),
    Column("email_key", Text, nullable=False, unique=True),  # casefolded: one row per address
    # The canonical mailbox (store.subscribers.canonical_mailbox): what a folded search finds.
    Column("mailbox", Text, nullable=False, server_default=""),
    # What link tokens name: random, never reused, new at each sign-up that starts over.
    Column("key", String(32), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("categories", JSON, nullable=False),
    Column("schedule", String(64), nullable=False),
    Column("locale", String(8), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("confirmed_at", UTCDateTime),
    Column("bounce_count", Integer, nullable=False, default=0),
    # Topics followed by email, as typed (newsletter.topics); matched folded at send time.
    Column("topics", JSON, nullable=False, server_default="[]"),
    Index("ix_subscribers_schedule_status", "schedule", "status"),
    Index("ix_subscribers_mailbox", "mailbox"),
    Index("ix_subscribers_status_id", "status", "id"),
    sqlite_autoincrement=True,
)

confirmations = Table(
    "confirmations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "subscriber_id",
        Id,
        ForeignKey("subscribers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # A hash of the canonical mailbox (store.subscribers.canonical_mailbox): what the
    # per-mailbox limit counts, without a second copy of the address.
    Column("mailbox", String(64), nullable=False),
    Column("origin", String(16), nullable=False),  # web, cli, import
    Column("state", String(16), nullable=False),  # queued -> sending -> sent | failed | skipped
    Column("detail", Text),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime),
    Column("attempted_at", UTCDateTime),  # last handed to the mail backend
    Column("lease_owner", String(64)),
    Column("lease_until", UTCDateTime),
    Index("ix_confirmations_mailbox_created_at", "mailbox", "created_at"),
    Index("ix_confirmations_state", "state", "next_attempt_at"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "subscriber_id",
        Id,
        ForeignKey("subscribers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("schedule", String(64), nullable=False),
    Column("period", UTCDateTime, nullable=False),
    Column("since", UTCDateTime, nullable=False),
    Column("until", UTCDateTime, nullable=False),
    Column("state", String(16), nullable=False),
    Column("message_id", Text, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("next_attempt_at", UTCDateTime),
    Column("lease_owner", String(64)),
    Column("lease_until", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("edition", String(32)),  # the edition it carried (editions.id), once sent
    UniqueConstraint("subscriber_id", "schedule", "period"),
    Index("ix_deliveries_state", "state", "next_attempt_at"),
    Index("ix_deliveries_edition", "edition"),
    Index("ix_deliveries_schedule_period_state", "schedule", "period", "state"),
)

# What deleted subscribers' deliveries counted, per period, edition and state: deleting a
# subscriber deletes its deliveries (and so its address), never the console's figures.
delivery_tallies = Table(
    "delivery_tallies",
    metadata,
    Column("schedule", String(64), primary_key=True),
    Column("period", UTCDateTime, primary_key=True),
    Column("edition", String(32), primary_key=True),  # "" for none
    Column("state", String(16), primary_key=True),
    Column("count", Integer, nullable=False),
    sqlite_with_rowid=False,
)

editions = Table(
    "editions",
    metadata,
    Column("id", String(32), primary_key=True),  # a hash of the content: newsletter.edition
    Column("schedule", String(64), nullable=False),
    Column("period", UTCDateTime, nullable=False),
    Column("locale", String(8), nullable=False),
    Column("categories", JSON, nullable=False),
    Column("sections", JSON, nullable=False),  # [{"category", "entries": [ids], "more"}]
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_editions_schedule_period", "schedule", "period"),
)

bounce_reports = Table(
    "bounce_reports",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # "m:" + a hash of the report's own Message-ID, else "b:" + a hash of its bytes:
    # the same report read twice (two processes, a restart, a file) counts once.
    Column("report_key", String(80), nullable=False, unique=True),
    Column("sha256", String(64), nullable=False),
    Column("message_id", Text),
    Column("origin", Text, nullable=False),  # "file:…", "maildir:…", "imap://…"
    Column("received_at", UTCDateTime, nullable=False),
    Column("kind", String(16), nullable=False),  # permanent | transient | complaint | other
    Column("recipients", JSON, nullable=False),
    Column("original_message_id", Text),
    Column("delivery_id", Id, ForeignKey("deliveries.id", ondelete="SET NULL")),
    Column("subscriber_id", Id, ForeignKey("subscribers.id", ondelete="SET NULL")),
    Column("matched_by", String(16)),  # verp | message_id; None: unmatched
    Column("outcome", String(32), nullable=False),
    Column("detail", Text),
    Column("raw", LargeBinary),  # kept for a report that matched nothing
    Index("ix_bounce_reports_received_at", "received_at"),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source_id", String(64), ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),  # failing | retired | quiet
    Column("since", UTCDateTime, nullable=False),  # when the problem began
    Column("detected_at", UTCDateTime, nullable=False),
    Column("last_error", Text),
    Column("opened_at", UTCDateTime),  # worth an alert from then on
    Column("notified_at", UTCDateTime),
    Column("resolved_at", UTCDateTime),
    Column("recovered", Boolean, nullable=False, default=False),
    Column("recovery_notified_at", UTCDateTime),
    # A notice being sent: claimed with a conditional UPDATE, so one process sends it.
    Column("notice_owner", String(64)),
    Column("notice_until", UTCDateTime),
)

# At most one unresolved incident per source: processes that see the same problem
# at once insert it once (INSERT … ON CONFLICT on this partial index).
Index(
    "uq_incidents_source_unresolved",
    incidents.c.source_id,
    unique=True,
    sqlite_where=text("resolved_at IS NULL"),
    postgresql_where=text("resolved_at IS NULL"),
)

# The operator console (web/admin, feedsvc.signin): sign-in attempts, sessions, what was done.
admin_attempts = Table(
    "admin_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("client", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),  # checking -> ok | failed; refused
    Index("ix_admin_attempts_at", "at"),
    Index("ix_admin_attempts_client_at", "client", "at"),
)

admin_sessions = Table(
    "admin_sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # a hash of the cookie's secret, never it
    Column("client", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),  # signed out
)

admin_events = Table(
    "admin_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("session", String(16), nullable=False),  # the start of admin_sessions.id
    Column("client", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target", Text, nullable=False),  # a source id, "subscriber 12": never an address
    Column("detail", Text),
    Index("ix_admin_events_at", "at"),
)


SEARCH_INDEX = "entry_search"
"""The search index (``store.search``): an FTS5 virtual table with its shadow tables on
SQLite, a tsvector table on PostgreSQL. Neither is SQLAlchemy metadata; migration 0011
creates them and schema comparisons leave them out (:func:`include_name`)."""


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic's ``include_name`` hook: everything but the search index."""
    return not (
        type_ == "table"
        and name is not None
        and (name == SEARCH_INDEX or name.startswith(SEARCH_INDEX + "_"))
    )
