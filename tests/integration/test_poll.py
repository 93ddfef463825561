"""Polling end to end, in process: a real HTTP server, the real parser pool, a real store."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from feedsvc import config as config_module
from feedsvc.config import Config
from feedsvc.ingest.poll import Poller
from feedsvc.ingest.pool import parse_pool
from feedsvc.model import PollResult, SourceStatus, utcnow
from feedsvc.store import Store
from feedsvc.store.schema import entries
from tests.feedserver import FeedServer

FEEDS = Path(__file__).parents[1] / "data" / "feeds"


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    executor = parse_pool()
    yield executor
    executor.shutdown()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[FeedServer]:
    root = tmp_path / "feeds"
    shutil.copytree(FEEDS, root)
    async with FeedServer(root) as running:
        yield running


def write_config(tmp_path: Path, db_url: str, sources: dict[str, str]) -> Config:
    lines = [
        "site:",
        '  title: "Bản tin thử"',
        '  base_url: "http://127.0.0.1:8080"',
        "storage:",
        f'  url: "{db_url}"',
        "fetch:",
        "  allow_private_networks: true",
        "  timeout: 5s",
        "categories:",
        "  - id: xa-hoi",
        '    title: "Xã hội"',
        "sources:",
    ]
    for source_id, url in sources.items():
        lines += [f"  - id: {source_id}", f'    url: "{url}"', "    categories: [xa-hoi]"]
    path = tmp_path / "config.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config_module.load(path)


async def poll(
    config: Config, store: Store, pool: ProcessPoolExecutor, *ids: str, force: bool = False
) -> dict[str, PollResult]:
    async with Poller(config, store, pool=pool) as poller:
        await asyncio.to_thread(poller.sync_sources)
        results = await poller.poll(list(ids) or None, force=force)
    return {result.source_id: result for result in results}


def titles(store: Store, source_id: str) -> list[str]:
    with store.engine.connect() as conn:
        query = sa.select(entries.c.title).where(entries.c.source_id == source_id)
        return sorted(conn.execute(query.order_by(entries.c.id)).scalars())


@pytest.fixture
def store_for(db_url: str) -> Iterator[Store]:
    store = Store.open(db_url)
    yield store
    store.close()


async def test_poll_stores_new_entries_then_304_keeps_them(
    tmp_path: Path, server: FeedServer, store_for: Store, db_url: str, pool: ProcessPoolExecutor
) -> None:
    config = write_config(
        tmp_path,
        db_url,
        {
            "xa-hoi": server.url("/feeds/baohatinh-xa-hoi.rss"),
            "atom": server.url("/encoded/gzip/atom-xhtml-relative.atom"),
        },
    )
    first = await poll(config, store_for, pool)
    assert (first["xa-hoi"].status, first["xa-hoi"].new) == ("updated", 5)
    assert first["atom"].new > 0
    second = await poll(config, store_for, pool)
    assert {r.status for r in second.values()} == {"not_modified"}
    assert server.headers_for("/feeds/baohatinh-xa-hoi.rss")[-1].get("If-None-Match")
    assert len(titles(store_for, "xa-hoi")) == 5
    [source] = store_for.sources.list(["xa-hoi"])
    assert (source.status, source.entries, source.error_count) == (SourceStatus.OK, 5, 0)


async def test_edited_entry_is_updated_in_place_and_new_one_added(
    tmp_path: Path, server: FeedServer, store_for: Store, db_url: str, pool: ProcessPoolExecutor
) -> None:
    server.write("live.rss", (FEEDS / "edited-v1.rss").read_bytes())
    config = write_config(tmp_path, db_url, {"live": server.url("/feeds/live.rss")})
    before = await poll(config, store_for, pool)
    server.write("live.rss", (FEEDS / "edited-v2.rss").read_bytes())
    after = await poll(config, store_for, pool)
    assert (after["live"].new, after["live"].updated) == (1, 1)
    assert len(titles(store_for, "live")) == before["live"].new + 1


async def test_one_bad_source_does_not_stop_the_others(
    tmp_path: Path, server: FeedServer, store_for: Store, db_url: str, pool: ProcessPoolExecutor
) -> None:
    config = write_config(
        tmp_path,
        db_url,
        {
            "html": server.url("/feeds/not-a-feed.html"),
            "bomb": server.url("/feeds/entity-bomb.rss"),
            "down": server.url("/status/500"),
            "good": server.url("/feeds/baohatinh-chinh-tri.rss"),
        },
    )
    results = await poll(config, store_for, pool)
    assert results["good"].new > 0
    for source_id in ("html", "bomb", "down"):
        assert results[source_id].status == "error"
        assert results[source_id].error
    assert "HTTP 500" in (results["down"].error or "")
    assert titles(store_for, "html") == titles(store_for, "bomb") == []
    health = {s.id: s for s in store_for.sources.list()}
    assert health["down"].status == SourceStatus.ERROR
    assert health["down"].next_poll_at is not None  # never silently abandoned


async def test_permanent_redirect_moves_the_source_and_gone_retires_it(
    tmp_path: Path, server: FeedServer, store_for: Store, db_url: str, pool: ProcessPoolExecutor
) -> None:
    config = write_config(
        tmp_path,
        db_url,
        {
            "moved": server.url("/redirect/301/redirect/301/feeds/baohatinh-xa-hoi.rss"),
            "temp": server.url("/redirect/302/feeds/baohatinh-chinh-tri.rss"),
            "gone": server.url("/status/410"),
        },
    )
    results = await poll(config, store_for, pool)
    assert results["gone"].status == "retired"
    health = {s.id: s for s in store_for.sources.list()}
    assert health["moved"].url == server.url("/feeds/baohatinh-xa-hoi.rss")
    assert health["moved"].config_url.endswith(
        "/redirect/301/redirect/301/feeds/baohatinh-xa-hoi.rss"
    )
    assert health["temp"].url == health["temp"].config_url
    assert health["gone"].status == SourceStatus.RETIRED
    again = await poll(config, store_for, pool)
    assert "gone" not in again  # retired: skipped without --force
    forced = await poll(config, store_for, pool, "gone", force=True)
    assert forced["gone"].status == "retired"
    assert server.requests["/status/410"] == 2


async def test_malformed_feed_keeps_entries_and_warns(
    tmp_path: Path, server: FeedServer, store_for: Store, db_url: str, pool: ProcessPoolExecutor
) -> None:
    config = write_config(tmp_path, db_url, {"bad": server.url("/feeds/malformed-recoverable.rss")})
    results = await poll(config, store_for, pool)
    assert results["bad"].new > 0
    assert results["bad"].warning
    [source] = store_for.sources.list(["bad"])
    assert source.status == SourceStatus.OK
    assert source.warning


async def test_two_pollers_never_poll_a_source_twice(
    tmp_path: Path, server: FeedServer, store_for: Store, db_url: str, pool: ProcessPoolExecutor
) -> None:
    names = [f"s{i}.rss" for i in range(12)]
    for name in names:
        server.write(name, (FEEDS / "baohatinh-xa-hoi.rss").read_bytes())
    config = write_config(
        tmp_path, db_url, {name[:-4]: server.url(f"/feeds/{name}") for name in names}
    )
    async with (
        Poller(config, store_for, pool=pool) as one,
        Poller(config, store_for, pool=pool) as two,
    ):
        await asyncio.to_thread(one.sync_sources)
        first, second = await asyncio.gather(one.poll(due_only=True), two.poll(due_only=True))
    assert len(first) + len(second) == 12
    assert all(server.requests[f"/feeds/{name}"] == 1 for name in names)


async def test_same_bytes_without_validators_are_not_parsed_again(
    tmp_path: Path, server: FeedServer, store_for: Store, db_url: str, pool: ProcessPoolExecutor
) -> None:
    config = write_config(tmp_path, db_url, {"plain": server.url("/plain/baohatinh-xa-hoi.rss")})
    await poll(config, store_for, pool)
    again = await poll(config, store_for, pool)
    assert again["plain"].status == "same_body"
    assert "If-None-Match" not in server.headers_for("/plain/baohatinh-xa-hoi.rss")[-1]


async def test_a_source_only_another_process_knows_is_left_to_it(
    tmp_path: Path, server: FeedServer, store_for: Store, db_url: str, pool: ProcessPoolExecutor
) -> None:
    """During a rollout, processes sharing a database may run different config.yaml files."""
    newer = write_config(
        tmp_path,
        db_url,
        {
            "xa-hoi": server.url("/feeds/baohatinh-xa-hoi.rss"),
            "moi": server.url("/feeds/baohatinh-chinh-tri.rss"),
        },
    )
    async with Poller(newer, store_for, pool=pool) as rolled_out:
        await asyncio.to_thread(rolled_out.sync_sources)
    older = write_config(tmp_path, db_url, {"xa-hoi": server.url("/feeds/baohatinh-xa-hoi.rss")})
    async with Poller(older, store_for, pool=pool) as not_yet:
        results = await not_yet.poll(due_only=True)
    assert [result.source_id for result in results] == ["xa-hoi"]
    assert server.requests["/feeds/baohatinh-chinh-tri.rss"] == 0
    async with Poller(newer, store_for, pool=pool) as rolled_out:  # its lease was released
        results = await rolled_out.poll(["moi"], due_only=True)
    assert [(result.source_id, result.status) for result in results] == [("moi", "updated")]


async def test_entries_stored_by_a_poll_killed_before_filing_are_filed_later(
    tmp_path: Path, server: FeedServer, pool: ProcessPoolExecutor, store_for: Store
) -> None:
    """A kill between storing a source's entries and filing them must not leave them
    out of every category for good: ``publish`` and the next poll both file them."""
    from feedsvc.publish.regenerate import Publisher

    config = write_config(
        tmp_path, str(store_for.engine.url), {"xa-hoi": server.url("/feeds/baohatinh-xa-hoi.rss")}
    )
    publisher = Publisher(config, store_for)
    publisher.publish_all(utcnow())  # a service that has run before: classification is current
    async with Poller(config, store_for, pool=pool) as poller:  # stores, never files
        await asyncio.to_thread(poller.sync_sources)
        [result] = await poller.poll()
    assert result.new > 0
    assert store_for.categories.newest("xa-hoi", 100) == []  # the killed poll's state

    publisher.publish_all(utcnow())  # what `feedsvc publish` runs
    filed = store_for.categories.newest("xa-hoi", 100)
    assert len(filed) == result.new
    document = store_for.documents.get("xa-hoi.rss")
    assert document is not None
    assert filed[0].title.encode() in document.body


async def test_the_next_poll_files_and_publishes_what_a_killed_one_left_though_it_stores_nothing(
    tmp_path: Path, server: FeedServer, pool: ProcessPoolExecutor, store_for: Store
) -> None:
    """The feed is unchanged on the next poll, so that poll stores nothing: it must still
    file the entries the killed poll stored, and write the feeds it had filed them for."""
    from feedsvc.publish.regenerate import Publisher

    config = write_config(
        tmp_path, str(store_for.engine.url), {"xa-hoi": server.url("/feeds/baohatinh-xa-hoi.rss")}
    )
    publisher = Publisher(config, store_for)
    publisher.publish_all(utcnow())
    async with Poller(config, store_for, pool=pool) as poller:  # stores, never files
        await asyncio.to_thread(poller.sync_sources)
        [stored] = await poller.poll()
    assert stored.new > 0
    async with Poller(config, store_for, pool=pool) as poller:
        again = await poller.poll(force=True)
    assert not any(result.entry_ids for result in again)  # the same bytes: nothing new
    publisher.after_poll(again, utcnow())
    filed = store_for.categories.newest("xa-hoi", 100)
    assert len(filed) == stored.new
    # Filed, then killed before the feeds were written: the mark says they are owed.
    store_for.documents.put("xa-hoi.rss", "application/rss+xml", b"<rss/>", utcnow())
    store_for.settings.set("publish.owed", "1")
    publisher.after_poll(again, utcnow())
    document = store_for.documents.get("xa-hoi.rss")
    assert document is not None
    assert filed[0].title.encode() in document.body


# --- the per-host limit ---------------------------------------------------------------

PLAIN = ("baohatinh-xa-hoi.rss", "baohatinh-chinh-tri.rss", "edited-v1.rss")


@pytest.mark.parametrize(("hosts", "at_once"), [(1, 2), (2, 4)])
async def test_a_poll_makes_at_most_two_requests_to_a_host_at_once(
    tmp_path: Path, db_url: str, store_for: Store, pool: ProcessPoolExecutor,
    hosts: int, at_once: int,
) -> None:  # fmt: skip
    root = tmp_path / "feeds"
    shutil.copytree(FEEDS, root)
    async with FeedServer(root, hosts=hosts) as server:
        # Twelve sources, round robin over the hosts; each answer takes 50 ms.
        sources = {
            f"s{n}": f"{server.base_urls[n % hosts]}/plain/{PLAIN[n % 3]}?delay=0.05&n={n}"
            for n in range(12)
        }
        config = write_config(tmp_path, db_url, sources)

        results = await poll(config, store_for, pool)

    assert sorted(results) == sorted(sources)
    assert {result.status for result in results.values()} == {"updated"}
    # The limit (fetch's per_host, 2) holds on each host, and is reached: a host's
    # sources do not wait for each other beyond it, nor for another host's.
    assert server.most_at_once == at_once
    assert server.requests.total() == 12
