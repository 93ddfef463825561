"""Seeding a store as a newsroom's morning looks: stored entries, confirmed readers.

Shared by the end-to-end tests that need a digest to send without polling first.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from feedsvc.config import Config
from feedsvc.model import ParsedEntry, ParsedFeed, utcnow
from feedsvc.newsletter.periods import latest_periods
from feedsvc.publish.regenerate import Publisher
from feedsvc.store import Store

SOURCE = ("xa-hoi", "https://baohatinh.vn/rss/xa-hoi.rss")


def entries_before_digest(
    config: Config, store: Store, titles: list[str], seen: datetime | None = None
) -> datetime:
    """Store and file one entry per title in source ``xa-hoi``, first seen an hour
    before today's 07:00 (Hà Nội) digest (or at ``seen``); return when they were seen."""
    if seen is None:
        _, period = latest_periods("0 7 * * *", "Asia/Ho_Chi_Minh", utcnow())
        seen = period - timedelta(hours=1)
    store.sources.sync([SOURCE], seen)
    [source] = store.sources.list()
    items = tuple(
        ParsedEntry(
            identity=f"tin-{n}",
            title=title,
            link=f"https://baohatinh.vn/{n}.html",
            published=seen,
            content_hash=str(n),
        )
        for n, title in enumerate(titles)
    )
    stored = store.entries.apply(source, ParsedFeed("Báo", None, items), {}, seen)
    Publisher(config, store).file(list(stored.new_ids))
    return seen


def add_readers(store: Store, count: int, *, schedule: str, since: datetime) -> None:
    """``count`` confirmed readers of ``xa-hoi`` in Vietnamese, reader0@example.vn …"""
    for n in range(count):
        store.subscribers.add(
            f"reader{n}@example.vn",
            categories=["xa-hoi"],
            schedule=schedule,
            locale="vi",
            timezone="Asia/Ho_Chi_Minh",
            confirmed=True,
            now=since,
        )
