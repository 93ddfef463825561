"""Which entries are filed under which category, and reading a category's newest entries."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, func, select, update

from feedsvc.model import Enclosure, Entry, Filed
from feedsvc.store.engine import insert, reading, writing
from feedsvc.store.schema import entries, entry_categories

_DATE = func.coalesce(entries.c.published_at, entries.c.first_seen_at)


def to_entry(row: Any) -> Entry:
    return Entry(
        id=row.id,
        source_id=row.source_id,
        identity=row.identity,
        title=row.title,
        first_seen=row.first_seen_at,
        link=row.link,
        guid=row.guid,
        guid_is_permalink=row.guid_is_permalink,
        summary=row.summary,
        content=row.content,
        author=row.author,
        categories=tuple(row.categories),
        enclosures=tuple(Enclosure(**item) for item in row.enclosures),
        image=row.image,
        published=row.published_at,
        updated=row.feed_updated_at,
        changed=row.changed_at,
        revision=row.revision,
        backlog=row.backlog,
    )


class CategoryStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def assign(self, filed: Mapping[int, Sequence[str]]) -> set[str]:
        """File each entry under exactly these categories; return every category touched.

        A category an entry left counts as touched too: its feed must drop the entry.
        The entries' ``filed`` mark is set in the same transaction.
        """
        if not filed:
            return set()
        ids = list(filed)
        with writing(self._engine) as conn:
            before = conn.execute(
                select(entry_categories.c.category_id)
                .where(entry_categories.c.entry_id.in_(ids))
                .distinct()
            )
            touched = set(before.scalars())
            conn.execute(delete(entry_categories).where(entry_categories.c.entry_id.in_(ids)))
            rows = [
                {"entry_id": entry_id, "category_id": category}
                for entry_id, categories in filed.items()
                for category in categories
            ]
            if rows:  # a process reclassifying at the same time may have filed some
                conn.execute(insert(conn, entry_categories).on_conflict_do_nothing(), rows)
            conn.execute(update(entries).where(entries.c.id.in_(ids)).values(filed=True))
        return touched | {category for categories in filed.values() for category in categories}

    def newest(self, category: str | None, limit: int) -> list[Entry]:
        """The newest entries of ``category`` (None: of every category), by display date."""
        query = select(entries).order_by(_DATE.desc(), entries.c.id.desc()).limit(limit)
        if category is not None:
            filed = select(entry_categories.c.entry_id).where(
                entry_categories.c.category_id == category
            )
            query = query.where(entries.c.id.in_(filed))
        with reading(self._engine) as conn:
            return [to_entry(row) for row in conn.execute(query)]

    def first_seen_between(self, since: datetime, until: datetime) -> list[Filed]:
        """Entries first seen in ``(since, until]`` that are filed somewhere, with their categories.

        Backlog is left out here already: it is never news.
        """
        query = (
            select(entries, entry_categories.c.category_id)
            .join(entry_categories, entry_categories.c.entry_id == entries.c.id)
            .where(entries.c.first_seen_at > since, entries.c.first_seen_at <= until)
            .where(entries.c.backlog.is_(False))
            .order_by(entries.c.id)
        )
        filed: dict[int, tuple[Entry, set[str]]] = {}
        with reading(self._engine) as conn:
            for row in conn.execute(query):
                if row.id not in filed:
                    filed[row.id] = (to_entry(row), set())
                filed[row.id][1].add(row.category_id)
        return [Filed(entry, frozenset(categories)) for entry, categories in filed.values()]

    def count_news(self, after: datetime, until: datetime) -> int:
        """Filed entries first seen in ``(after, until]`` that are news (not backlog)."""
        filed = select(entry_categories.c.entry_id).where(
            entry_categories.c.entry_id == entries.c.id
        )
        query = (
            select(func.count())
            .select_from(entries)
            .where(entries.c.first_seen_at > after, entries.c.first_seen_at <= until)
            .where(entries.c.backlog.is_(False), filed.exists())
        )
        with reading(self._engine) as conn:
            return int(conn.execute(query).scalar_one())

    def count_backlog(self) -> tuple[int, int]:
        """How many stored entries are backlog, and how many are news."""
        query = select(entries.c.backlog, func.count()).group_by(entries.c.backlog)
        with reading(self._engine) as conn:
            counts = {bool(backlog): count for backlog, count in conn.execute(query)}
        return counts.get(True, 0), counts.get(False, 0)

    def unfiled(self, limit: int = 1000) -> list[Entry]:
        """Entries stored (or edited) but not yet filed, oldest first."""
        query = select(entries).where(entries.c.filed.is_(False)).order_by(entries.c.id)
        with reading(self._engine) as conn:
            return [to_entry(row) for row in conn.execute(query.limit(limit))]

    def entries(self, ids: Sequence[int]) -> list[Entry]:
        with reading(self._engine) as conn:
            rows = conn.execute(select(entries).where(entries.c.id.in_(list(ids))))
            return [to_entry(row) for row in rows]

    def batches(self, size: int = 1000) -> Iterator[list[Entry]]:
        """Every stored entry, ``size`` at a time (for reclassifying after a config change)."""
        last = 0
        while True:
            with reading(self._engine) as conn:
                rows = conn.execute(
                    select(entries).where(entries.c.id > last).order_by(entries.c.id).limit(size)
                ).all()
            if not rows:
                return
            yield [to_entry(row) for row in rows]
            last = rows[-1].id
