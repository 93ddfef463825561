"""Entries: storing one parsed feed in one transaction, and reading entries back.

This is the hot path of a poll, so it is SQLAlchemy Core with executemany, never
the ORM: one SELECT of the identities already stored, one INSERT of the new
entries, one UPDATE of the edited ones, one UPDATE of the source.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    case,
    delete,
    func,
    null,
    select,
    true,
    update,
)

from feedsvc.model import (
    Article,
    ArticleDue,
    ItemKey,
    ParsedEntry,
    ParsedFeed,
    Source,
    StoreOutcome,
)
from feedsvc.store import search as search_index
from feedsvc.store import stories as story_rows
from feedsvc.store.engine import insert, reading, writing
from feedsvc.store.schema import entries, entry_categories, item_keys, settings
from feedsvc.store.sources import SourceStore

BACKLOG_AGE = timedelta(days=1)
"""Entries published this long before a source's first poll are its backlog, not news."""

# Written so that both SQLite ("= 1") and PostgreSQL use ix_entries_full_text_due.
_DUE = entries.c.full_text_due == true()

WantsArticle = Callable[[ParsedEntry], bool]
"""Whether an entry's page is to be fetched for its full text (``ingest.fulltext``)."""

_EDITABLE = (
    "guid",
    "guid_is_permalink",
    "link",
    "title",
    "summary",
    "content",
    "author",
    "categories",
    "enclosures",
    "image",
    "published_at",
    "feed_updated_at",
    "date_flag",
    "content_hash",
)


class EntryStore:
    def __init__(self, engine: Engine, sources: SourceStore) -> None:
        self._engine = engine
        self._sources = sources

    def apply(
        self,
        source: Source,
        feed: ParsedFeed,
        source_values: dict[str, Any],
        now: datetime,
        owner: str | None = None,
        *,
        wants_article: WantsArticle | None = None,
        stored_items: Collection[str] | None = None,
    ) -> StoreOutcome:
        """Store ``feed``'s entries and the source's new state, all or nothing, and give
        ``owner``'s lease on the source back.

        An entry whose identity is already stored for this source is updated in
        place when its content changed (``revision`` goes up, ``first_seen_at``
        stays, so it is not news again); otherwise it is left alone. New entries
        that ``wants_article`` picks are marked to have their page fetched; an
        edit keeps an article already fetched unless the entry's link changed.

        The source's item keys become ``feed.items``; ``stored_items`` are the
        keys stored when the feed was parsed (``item_keys``), read again if None.
        """
        wants = wants_article or _no_article
        unique = _first_of_each_identity(feed.entries)
        with writing(self._engine) as conn:
            stored = {
                row.identity: (row.id, row.content_hash)
                for row in conn.execute(
                    select(entries.c.id, entries.c.identity, entries.c.content_hash)
                    .where(entries.c.source_id == source.id)
                    .where(entries.c.identity.in_(list(unique)))
                )
            }
            fresh = [e for identity, e in unique.items() if identity not in stored]
            edited = [
                (stored[identity][0], e)
                for identity, e in unique.items()
                if identity in stored and stored[identity][1] != e.content_hash
            ]
            new_ids: list[int] = []
            rows = [_new_row(source, e, now, wants(e)) for e in fresh]
            ids = {identity: row[0] for identity, row in stored.items()}
            if rows:
                returned = conn.execute(
                    entries.insert().returning(entries.c.id, entries.c.identity), rows
                ).all()
                new_ids = [entry_id for entry_id, _ in returned]
                ids |= {identity: entry_id for entry_id, identity in returned}
                search_index.write(conn, _docs((ids[e.identity], e) for e in fresh))
            if edited:
                story_rows.lock(conn)  # before the rows: detection locks in that order too
                conn.execute(
                    update(entries)
                    .where(entries.c.id == bindparam("_id"))
                    .values(
                        changed_at=now,
                        revision=entries.c.revision + 1,
                        filed=False,  # an edit may move it between categories
                        **{name: bindparam(f"_{name}") for name in _EDITABLE}
                        | _KEEP_ARTICLE_UNLESS_LINK_CHANGED,
                    ),
                    [_edit_params(entry_id, e, wants(e)) for entry_id, e in edited],
                )
                search_index.write(conn, _docs(edited))
                # Detected again from the new text (store.stories.forget).
                story_rows.forget(
                    conn,
                    [entry_id for entry_id, _ in edited],
                    since=now - story_rows.DETECTED_WITHIN,
                )
            _replace_item_keys(conn, source.id, feed.items, stored_items, ids)
            self._sources.release(conn, source.id, source_values, owner, stored_new=bool(fresh))
        return StoreOutcome(
            new=len(fresh),
            updated=len(edited),
            new_ids=tuple(new_ids),
            updated_ids=tuple(entry_id for entry_id, _ in edited),
            backlog=sum(1 for row in rows if row["backlog"]),
        )

    def item_keys(self, source_id: str) -> dict[str, str]:
        """The keys of the source's last document's items whose entries are stored, each
        with its entry's identity (``ParsedFeed.items``)."""
        query = (
            select(item_keys.c.key, entries.c.identity)
            .join(entries, entries.c.id == item_keys.c.entry_id)
            .where(item_keys.c.source_id == source_id)
        )
        with reading(self._engine) as conn:
            return {row.key: row.identity for row in conn.execute(query)}

    def articles_due(self, source_id: str, limit: int) -> list[ArticleDue]:
        """The source's entries whose page is still to be fetched, oldest stored first
        (those a killed process left come before this poll's)."""
        query = (
            select(entries.c.id, entries.c.link, entries.c.content)
            .where(_DUE, entries.c.source_id == source_id)
            .order_by(entries.c.id)
            .limit(limit)
        )
        with reading(self._engine) as conn:
            return [ArticleDue(row.id, row.link, row.content) for row in conn.execute(query)]

    def record_articles(self, articles: Sequence[Article], now: datetime) -> list[int]:
        """Store what each entry's page gave and clear its mark; return the entries whose
        content is now the article's.

        An entry no longer due (another process got there first) or whose link
        changed since the fetch (an edit: its new page is due instead) is left as
        it is. An article's entry is marked unfiled, so the next publish renders
        its feeds again.
        """
        if not articles:
            return []
        with writing(self._engine) as conn:
            still_due = conn.execute(
                select(entries.c.id, entries.c.link)
                .where(entries.c.id.in_([a.entry_id for a in articles]))
                .where(_DUE)
                .with_for_update()
            )
            links = {row.id: row.link for row in still_due}
            current = [a for a in articles if links.get(a.entry_id, None) == a.link]
            found = [a for a in current if a.content is not None]
            failed = [a for a in current if a.content is None]
            done = {"full_text_due": False, "full_text_at": now}
            if found:
                conn.execute(
                    update(entries)
                    .where(entries.c.id == bindparam("_id"))
                    .values(
                        content=bindparam("_content"),
                        content_source="article",
                        full_text_error=None,
                        changed_at=now,
                        filed=False,
                        **done,
                    ),
                    [{"_id": a.entry_id, "_content": a.content} for a in found],
                )
                _reindex(conn, [a.entry_id for a in found])
            if failed:
                conn.execute(
                    update(entries)
                    .where(entries.c.id == bindparam("_id"))
                    .values(full_text_error=bindparam("_error"), **done),
                    [{"_id": a.entry_id, "_error": a.error} for a in failed],
                )
        return [a.entry_id for a in found]

    def purge(self, before: datetime, keep_per_feed: int) -> int:
        """Delete entries first seen before ``before``, except each feed's newest
        ``keep_per_feed`` (a quiet category keeps its feed full). Returns how many."""
        newest = func.coalesce(entries.c.published_at, entries.c.first_seen_at).desc()
        with writing(self._engine) as conn:
            keep = set(
                conn.execute(select(entries.c.id).order_by(newest).limit(keep_per_feed)).scalars()
            )
            categories = conn.execute(select(entry_categories.c.category_id).distinct()).scalars()
            for category in list(categories):
                filed = (
                    select(entries.c.id)
                    .join(entry_categories, entry_categories.c.entry_id == entries.c.id)
                    .where(entry_categories.c.category_id == category)
                    .order_by(newest)
                    .limit(keep_per_feed)
                )
                keep.update(conn.execute(filed).scalars())
            old = select(entries.c.id).where(entries.c.first_seen_at < before)
            doomed = [entry_id for entry_id in conn.execute(old).scalars() if entry_id not in keep]
            for start in range(0, len(doomed), 1000):
                batch = doomed[start : start + 1000]
                search_index.remove(conn, batch)
                story_rows.forget(conn, batch)
                conn.execute(delete(entries).where(entries.c.id.in_(batch)))
            if doomed:
                _mark_purged(conn, before.isoformat())
        return len(doomed)

    def count(self, source_id: str | None = None) -> int:
        query = select(func.count()).select_from(entries)
        if source_id is not None:
            query = query.where(entries.c.source_id == source_id)
        with reading(self._engine) as conn:
            return int(conn.execute(query).scalar_one())


def _replace_item_keys(
    conn: Connection,
    source_id: str,
    items: tuple[ItemKey, ...] | None,
    stored_items: Collection[str] | None,
    ids: dict[str, int],
) -> None:
    """Make the source's item keys those of ``items``: keys already stored stay, the others
    go, new ones point at their entries (``ids``: identity -> id of this feed's entries)."""
    mine = item_keys.c.source_id == source_id
    if stored_items is None:
        stored_items = set(conn.execute(select(item_keys.c.key).where(mine)).scalars())
    if items is None:
        if stored_items:
            conn.execute(delete(item_keys).where(mine))
        return
    keys = {item.key: item.identity for item in items}
    if gone := [key for key in stored_items if key not in keys]:
        conn.execute(delete(item_keys).where(mine, item_keys.c.key.in_(gone)))
    rows = [
        {"source_id": source_id, "key": key, "entry_id": ids[identity]}
        for key, identity in keys.items()
        if key not in stored_items and identity in ids
    ]
    if rows:
        conn.execute(item_keys.insert(), rows)


def _docs(pairs: Iterable[tuple[int, ParsedEntry]]) -> list[tuple[int, str, str, str]]:
    return [(entry_id, e.title, e.summary, e.content) for entry_id, e in pairs]


def _reindex(conn: Connection, entry_ids: Sequence[int]) -> None:
    """Index these entries again as stored now (their content was replaced in SQL)."""
    rows = conn.execute(
        select(entries.c.id, entries.c.title, entries.c.summary, entries.c.content).where(
            entries.c.id.in_(list(entry_ids))
        )
    )
    search_index.write(conn, [tuple(row) for row in rows])


def _mark_purged(conn: Connection, marker: str) -> None:
    """Tell cached searches (``web.search``) that entries went: their results may hold them."""
    upsert = insert(conn, settings).values(key=search_index.PURGED, value=marker)
    conn.execute(upsert.on_conflict_do_update(index_elements=["key"], set_={"value": marker}))


def _first_of_each_identity(items: Sequence[ParsedEntry]) -> dict[str, ParsedEntry]:
    """A feed that repeats an identity keeps its first (newest, by feed order) copy."""
    unique: dict[str, ParsedEntry] = {}
    for entry in items:
        unique.setdefault(entry.identity, entry)
    return unique


def _columns(entry: ParsedEntry) -> dict[str, Any]:
    return {
        "guid": entry.guid,
        "guid_is_permalink": entry.guid_is_permalink,
        "link": entry.link,
        "title": entry.title,
        "summary": entry.summary,
        "content": entry.content,
        "author": entry.author,
        "categories": list(entry.categories),
        "enclosures": [
            {"url": e.url, "type": e.type, "length": e.length} for e in entry.enclosures
        ],
        "image": entry.image,
        "published_at": entry.published,
        "feed_updated_at": entry.updated,
        "date_flag": entry.date_flag,
        "content_hash": entry.content_hash,
    }


def _new_row(source: Source, entry: ParsedEntry, now: datetime, due: bool) -> dict[str, Any]:
    return {
        **_columns(entry),
        "source_id": source.id,
        "identity": entry.identity,
        "first_seen_at": now,
        "changed_at": now,
        "revision": 0,
        "backlog": _is_backlog(entry, source.first_polled_at, now),
        "filed": False,
        "content_source": "feed",
        "full_text_due": due,
    }


def _no_article(entry: ParsedEntry) -> bool:
    return False


# An edit from the feed keeps the article fetched for the entry, and the record of a
# failed fetch, as long as the link is the same: the page was fetched once, on purpose.
# A new link is a new page: the feed's content is back, and its page is due if wanted.
# CASE in SQL, not a decision on rows read before: it sees an article another process
# stored meanwhile. Every right-hand side reads the row as it was before the UPDATE.
_SAME_LINK = entries.c.link.is_not_distinct_from(bindparam("_link"))
_KEEP_ARTICLE_UNLESS_LINK_CHANGED: dict[str, Any] = {
    "content": case(
        (and_(entries.c.content_source == "article", _SAME_LINK), entries.c.content),
        else_=bindparam("_content"),
    ),
    "content_source": case((_SAME_LINK, entries.c.content_source), else_="feed"),
    "full_text_due": case((_SAME_LINK, entries.c.full_text_due), else_=bindparam("_due")),
    "full_text_error": case((_SAME_LINK, entries.c.full_text_error), else_=null()),
    "full_text_at": case((_SAME_LINK, entries.c.full_text_at), else_=null()),
}


def _is_backlog(entry: ParsedEntry, first_polled_at: datetime | None, now: datetime) -> bool:
    """Old news from a newly added source: published well before we first polled it.

    On the very first poll an undated entry counts as backlog too: nothing says
    it is recent, and a new source must not flood the next digest.
    """
    if entry.published is None:
        return first_polled_at is None
    return entry.published < (first_polled_at or now) - BACKLOG_AGE


def _edit_params(entry_id: int, entry: ParsedEntry, due: bool) -> dict[str, Any]:
    columns = _columns(entry)
    return {"_id": entry_id, "_due": due, **{f"_{name}": value for name, value in columns.items()}}
