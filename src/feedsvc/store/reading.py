"""Reading the stored stories as the site's pages list them: newest first, a page at a time.

A page is keyed by where the previous one ended (the story's display date, then its
id), never by an offset: a story stored while a reader pages on does not push the
next page's stories onto one already read, nor make any story appear twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, Row, Select, and_, func, literal, or_, select, type_coerce

from feedsvc.store.engine import reading
from feedsvc.store.schema import UTCDateTime, entries, entry_categories, sources

_DATE = type_coerce(func.coalesce(entries.c.published_at, entries.c.first_seen_at), UTCDateTime)


@dataclass(frozen=True, slots=True)
class Position:
    """Where a story sits in a list: its display date, then its id (the tie-break)."""

    date: datetime
    entry_id: int


@dataclass(frozen=True, slots=True)
class StoryCard:
    """One story as a list shows it (no content: a list never needs the whole text)."""

    id: int
    title: str
    link: str | None
    source_id: str
    source_title: str | None  # the feed's own title, when it gave one
    date: datetime  # the publisher's date, else when it was first seen
    summary: str  # plain text, as stored
    image: str | None

    @property
    def position(self) -> Position:
        return Position(self.date, self.id)


@dataclass(frozen=True, slots=True)
class Story:
    """One story as its own page shows it."""

    card: StoryCard
    content: str  # sanitized HTML, as stored; may be empty
    author: str | None
    published: datetime | None
    first_seen: datetime
    updated: datetime | None
    category_ids: tuple[str, ...]  # ours (entry_categories), sorted


class ReadingStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def older(self, category: str | None, before: Position | None, limit: int) -> list[StoryCard]:
        """Up to ``limit`` stories of ``category`` (None: any) after ``before``, newest first."""
        query = _cards(category).order_by(_DATE.desc(), entries.c.id.desc()).limit(limit)
        if before is not None:
            date = literal(before.date, UTCDateTime)
            query = query.where(
                or_(_DATE < date, and_(_DATE == date, entries.c.id < before.entry_id))
            )
        return self._read(query)

    def newer(self, category: str | None, after: Position, limit: int) -> list[StoryCard]:
        """Up to ``limit`` stories just newer than ``after``, newest first (a "previous" page)."""
        date = literal(after.date, UTCDateTime)
        query = (
            _cards(category)
            .where(or_(_DATE > date, and_(_DATE == date, entries.c.id > after.entry_id)))
            .order_by(_DATE.asc(), entries.c.id.asc())
            .limit(limit)
        )
        return self._read(query)[::-1]

    def story(self, entry_id: int) -> Story | None:
        """The stored story ``entry_id`` with the categories it is filed under, or None."""
        query = _cards(None).add_columns(
            entries.c.content,
            entries.c.author,
            entries.c.published_at,
            entries.c.first_seen_at,
            entries.c.feed_updated_at,
        )
        filed = select(entry_categories.c.category_id).where(
            entry_categories.c.entry_id == entry_id
        )
        with reading(self._engine) as conn:
            row = conn.execute(query.where(entries.c.id == entry_id)).first()
            if row is None:
                return None
            categories = tuple(sorted(conn.execute(filed).scalars()))
        return Story(
            _card(row),
            row.content,
            row.author,
            row.published_at,
            row.first_seen_at,
            row.feed_updated_at,
            categories,
        )

    def _read(self, query: Select[tuple[object, ...]]) -> list[StoryCard]:
        with reading(self._engine) as conn:
            return [_card(row) for row in conn.execute(query)]


def _cards(category: str | None) -> Select[tuple[object, ...]]:
    query = select(
        entries.c.id,
        entries.c.title,
        entries.c.link,
        entries.c.source_id,
        sources.c.title.label("source_title"),
        _DATE.label("date"),
        entries.c.summary,
        entries.c.image,
    ).join(sources, sources.c.id == entries.c.source_id)
    if category is not None:
        filed = select(entry_categories.c.entry_id).where(
            entry_categories.c.category_id == category
        )
        query = query.where(entries.c.id.in_(filed))
    return query  # None: every stored story, as the "all" feed shows


def _card(row: Row[tuple[object, ...]]) -> StoryCard:
    values = row._mapping
    return StoryCard(
        id=values["id"],
        title=values["title"],
        link=values["link"],
        source_id=values["source_id"],
        source_title=values["source_title"],
        date=values["date"],
        summary=values["summary"],
        image=values["image"],
    )
