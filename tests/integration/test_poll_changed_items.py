"""Polling a feed that changes on every request: only its new and edited items are parsed,
and what is stored is what parsing the whole document stores.

Real HTTP server (tests/feedserver.py: ``/rolling/`` adds a ``lastBuildDate`` of now
and one new item to every answer, as most Vietnamese news sites do), the real
parse pool, real SQLite and PostgreSQL stores.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from feedsvc.config import Config
from feedsvc.ingest.poll import Poller
from feedsvc.model import PollResult, utcnow
from feedsvc.store import Store
from feedsvc.store.schema import entries, item_keys
from tests.feedserver import FeedServer
from tests.integration.test_poll import FEEDS, pool, server, store_for, write_config

__all__ = ["pool", "server", "store_for"]  # the fixtures these tests use

SOURCE = "xa-hoi"
FEED = "baohatinh-xa-hoi.rss"  # five items
EDITED_TITLE = b"<title>Ti\xc3\xaau \xc4\x91\xe1\xbb\x81 \xc4\x91\xc3\xa3 s\xe1\xbb\xada</title>"


async def poll(
    config: Config, store: Store, pool: ProcessPoolExecutor, *, changed_items: bool = True
) -> PollResult:
    async with Poller(config, store, pool=pool) as poller:
        poller.parse_changed_items = changed_items
        await asyncio.to_thread(poller.sync_sources)
        [result] = await poller.poll(force=True)
    assert result.error is None, result.error
    return result


def stored(store: Store) -> list[dict[str, Any]]:
    """Every stored entry as a reader sees it, in the order they were first stored."""
    hidden = {"id", "first_seen_at", "changed_at"}  # when this poll ran, not what it stored
    columns = [column for column in entries.c if column.name not in hidden]
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(*columns).order_by(entries.c.id)).mappings()
        return [dict(row) for row in rows]


def keyed(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(item_keys)).scalar_one())


async def test_a_feed_that_changes_on_every_request_stores_just_its_new_item(
    tmp_path: Path, server: FeedServer, store_for: Store, db_url: str, pool: ProcessPoolExecutor
) -> None:
    config = write_config(tmp_path, db_url, {SOURCE: server.url(f"/rolling/{FEED}")})
    first = await poll(config, store_for, pool)
    assert (first.status, first.new) == ("updated", 6)
    for number in (2, 3):
        again = await poll(config, store_for, pool)
        assert (again.status, again.new, again.updated) == ("updated", 1, 0)
        titles = [row["title"] for row in stored(store_for)]
        assert titles[-1] == f"Tin mới số {number}"
    assert len(stored(store_for)) == 5 + 3
    assert keyed(store_for) == 6  # the last document's items: the five and its new one


async def test_an_edited_item_is_updated_in_place(
    tmp_path: Path, server: FeedServer, store_for: Store, db_url: str, pool: ProcessPoolExecutor
) -> None:
    body = (FEEDS / FEED).read_bytes()
    server.write("live.rss", body)
    config = write_config(tmp_path, db_url, {SOURCE: server.url("/rolling/live.rss")})
    await poll(config, store_for, pool)
    before = stored(store_for)
    third_title = body.split(b"<title>")[4].split(b"</title>")[0]  # the third item's
    server.write("live.rss", body.replace(b"<title>" + third_title + b"</title>", EDITED_TITLE))
    after = await poll(config, store_for, pool)
    assert (after.new, after.updated) == (1, 1)
    rows = stored(store_for)
    edited = [(b, a) for b, a in zip(before, rows, strict=False) if b != a]
    assert len(edited) == 1
    old, new = edited[0]
    assert (new["identity"], new["revision"]) == (old["identity"], old["revision"] + 1)
    assert new["title"] == "Tiêu đề đã sửa"
    assert len(rows) == len(before) + 1


async def test_an_entry_purged_while_still_in_the_feed_is_stored_again(
    tmp_path: Path, server: FeedServer, store_for: Store, db_url: str, pool: ProcessPoolExecutor
) -> None:
    """As the whole parse would: retention deleted it, so it is new again."""
    config = write_config(tmp_path, db_url, {SOURCE: server.url(f"/rolling/{FEED}")})
    await poll(config, store_for, pool)
    purged = store_for.entries.purge(utcnow() + timedelta(days=1), keep_per_feed=0)
    assert purged == 6
    assert keyed(store_for) == 0  # deleting entries deletes their keys
    again = await poll(config, store_for, pool)
    assert again.new == 6  # the five and this request's new item


async def test_changed_items_store_exactly_what_the_whole_parse_stores(
    tmp_path: Path, server: FeedServer, pool: ProcessPoolExecutor
) -> None:
    """One sequence of documents (new, edited, dropped, repeated items) polled into two
    databases, one parsing only changed items, one parsing every item."""
    v1, v2 = (FEEDS / "edited-v1.rss").read_bytes(), (FEEDS / "edited-v2.rss").read_bytes()
    third = v2.split(b"<title>")[4].split(b"</title>")[0]
    versions = [
        v1,
        v2,
        v2.replace(b"<title>" + third + b"</title>", EDITED_TITLE),
        v1,  # the edits taken back, the new item dropped
        v2,
    ]
    urls = {flag: f"sqlite:///{tmp_path / f'{flag}.db'}" for flag in (True, False)}
    configs = {}
    for flag, url in urls.items():
        (tmp_path / str(flag)).mkdir()
        configs[flag] = write_config(
            tmp_path / str(flag), url, {SOURCE: server.url("/plain/live.rss")}
        )
    stores = {flag: Store.open(url) for flag, url in urls.items()}
    try:
        for version in versions:
            server.write("live.rss", version)
            outcomes = {
                flag: await poll(configs[flag], store, pool, changed_items=flag)
                for flag, store in stores.items()
            }
            assert outcomes[True] == outcomes[False]
            assert stored(stores[True]) == stored(stores[False])
        assert keyed(stores[True]) > 0
        assert keyed(stores[False]) == 0
    finally:
        for store in stores.values():
            store.close()
