"""Feeds published from cached entry fragments, on SQLite and PostgreSQL.

What a reader would notice if the cache were wrong: a feed that differs from a
fresh render (an edit not shown, ids minted for the old address), or, for the
operator, a cache that outlives the entries retention removes.
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta
from pathlib import Path

from feedsvc import config as config_module
from feedsvc.config import Config
from feedsvc.model import Fragment, ParsedEntry, ParsedFeed
from feedsvc.publish.feeds import FeedInfo, render_all
from feedsvc.publish.regenerate import ALL, Publisher
from feedsvc.store import Store
from feedsvc.stories.clusters import one_per_story
from feedsvc.stories.exact import dedupe
from tests.conftest import NOW
from tests.integration.corpus_site import CONFIG, load_corpus


def newsroom(tmp_path: Path, db_url: str, base_url: str = "http://127.0.0.1:8080") -> Config:
    text = CONFIG.format(port=8080, db="unused").replace('"sqlite:///unused"', f'"{db_url}"')
    text = text.replace('"http://127.0.0.1:8080"', f'"{base_url}"')
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return config_module.load(path)


def untagged(n: int, title: str = "Tin không có guid") -> ParsedEntry:
    """An entry whose id in the feeds is a tag: URI minted from site.base_url."""
    return ParsedEntry(
        identity=f"fingerprint:{n}",
        title=f"{title} {n} (xã hội)",
        summary="Tóm tắt xã hội",
        published=NOW - timedelta(minutes=n),
        content_hash=f"{title}-{n}",
    )


def add_untagged(store: Store, *items: ParsedEntry) -> list[int]:
    source = next(s for s in store.sources.list() if s.id == "xa-hoi")
    outcome = store.entries.apply(source, ParsedFeed("Báo", None, items), {}, NOW)
    return [*outcome.new_ids, *outcome.updated_ids]


def full_render(config: Config, store: Store, feed_id: str) -> dict[str, bytes]:
    """What the feed's documents are without any cache: today's whole-document render."""
    site, hub = config.site, config.feeds.websub_hub
    known = {c.id: c for c in config.categories}
    info = (
        FeedInfo.for_all(site, hub)
        if feed_id == ALL
        else FeedInfo.for_category(site, known[feed_id], hub)
    )
    limit = config.feeds.max_items
    newest = store.categories.newest(None if feed_id == ALL else feed_id, limit * 2)
    stories = store.stories.contexts([entry.id for entry in newest])
    shown = one_per_story(dedupe(newest), stories)[:limit]
    return dict(render_all(config.feeds.formats, info, shown, NOW, stories))


def assert_published_as_a_full_render(config: Config, store: Store) -> None:
    for feed_id in [ALL, *(c.id for c in config.categories)]:
        for fmt, body in full_render(config, store, feed_id).items():
            document = store.documents.get(f"{feed_id}.{fmt}")
            assert document is not None
            assert document.body == body, f"{feed_id}.{fmt}"


def test_an_edit_shows_and_only_its_fragments_are_rendered_again(
    tmp_path: Path, store: Store, db_url: str
) -> None:
    config = newsroom(tmp_path, db_url)
    load_corpus(config, store)
    [entry_id] = add_untagged(store, untagged(1))
    publisher = Publisher(config, store)
    publisher.publish_all(NOW)
    rows = store.fragments.count()
    assert rows == len(store.categories.newest(None, 100))
    before = store.fragments.get([entry_id], ["rss"], _context(config))
    add_untagged(store, dataclasses.replace(untagged(1, "Tin đã sửa"), identity="fingerprint:1"))
    publisher.publish_all(NOW + timedelta(minutes=5))
    assert store.fragments.count() == rows
    after = store.fragments.get([entry_id], ["rss"], _context(config))
    assert after[entry_id].revision == before[entry_id].revision + 1
    assert_published_as_a_full_render(config, store)
    feed = store.documents.get("xa-hoi.rss")
    assert feed is not None
    assert "Tin đã sửa 1 (xã hội)".encode() in feed.body


def test_a_new_site_address_mints_new_ids_despite_a_warm_cache(
    tmp_path: Path, store: Store, db_url: str
) -> None:
    old = newsroom(tmp_path, db_url, "https://old.example.vn")
    load_corpus(old, store)
    add_untagged(store, untagged(1), untagged(2))
    Publisher(old, store).publish_all(NOW)
    new = newsroom(tmp_path, db_url, "https://bantin.example.vn")
    Publisher(new, store).publish_all(NOW)
    assert_published_as_a_full_render(new, store)
    feed = store.documents.get("all.atom")
    assert feed is not None
    assert b"tag:bantin.example.vn," in feed.body
    assert b"old.example.vn" not in feed.body


def test_retention_takes_the_fragments_of_purged_entries(
    tmp_path: Path, store: Store, db_url: str
) -> None:
    config = newsroom(tmp_path, db_url)
    load_corpus(config, store)
    Publisher(config, store).publish_all(NOW)
    ids = [e.id for e in store.categories.newest(None, 1000)]
    assert store.fragments.count() == len(ids)
    store.entries.purge(NOW + timedelta(days=1), keep_per_feed=2)
    kept = [e.id for e in store.categories.newest(None, 1000)]
    assert 0 < len(kept) < len(ids)
    assert store.fragments.count() == len(kept)
    assert set(store.fragments.get(ids, ["rss"], _context(config))) == set(kept)


def test_an_older_revision_never_replaces_a_newer_one(
    tmp_path: Path, store: Store, db_url: str
) -> None:
    config = newsroom(tmp_path, db_url)
    store.sources.sync([(s.id, s.url) for s in config.sources], NOW)
    [entry_id] = add_untagged(store, untagged(1))

    def fragment(revision: int, **bodies: bytes) -> Fragment:
        return Fragment(entry_id, revision, "x", NOW, NOW, bodies)

    def stored(context: str = "c") -> Fragment:
        return store.fragments.get([entry_id], ["rss", "atom"], context)[entry_id]

    assert store.fragments.put([fragment(2, rss=b"<item>2</item>")], "c") == 1
    store.fragments.put([fragment(1, rss=b"<item>1</item>")], "c")  # read the entry earlier
    assert (stored().revision, stored().bodies) == (2, {"rss": b"<item>2</item>"})
    store.fragments.put([fragment(2, atom=b"<entry>2</entry>")], "c")  # formats add up
    assert stored().bodies == {"rss": b"<item>2</item>", "atom": b"<entry>2</entry>"}
    store.fragments.put([fragment(3, atom=b"<entry>3</entry>")], "c")  # an edit starts over
    assert stored().bodies == {"atom": b"<entry>3</entry>"}
    store.fragments.put([fragment(3, rss=b"<item>3</item>")], "d")  # so does another context
    assert stored("d").bodies == {"rss": b"<item>3</item>"}
    assert store.fragments.get([entry_id], ["rss"], "c") == {}


def test_processes_publishing_at_once_agree(tmp_path: Path, store: Store, db_url: str) -> None:
    config = newsroom(tmp_path, db_url)
    load_corpus(config, store)
    add_untagged(store, *(untagged(n) for n in range(40)))
    stores = [Store.open(db_url) for _ in range(3)]
    errors: list[BaseException] = []

    def publish(other: Store) -> None:
        try:
            Publisher(config, other).publish_all(NOW + timedelta(hours=1))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=publish, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for other in stores:
        other.close()
    assert errors == []
    assert_published_as_a_full_render(config, store)


def _context(config: Config) -> str:
    from feedsvc.publish.fragments import context_key

    return context_key(FeedInfo.for_all(config.site).entry_context)


def test_fragments_of_entries_out_of_every_feed_are_pruned(
    tmp_path: Path, store: Store, db_url: str
) -> None:
    config = newsroom(tmp_path, db_url)
    load_corpus(config, store)
    publisher = Publisher(config, store)
    publisher.publish_all(NOW)
    stored = store.fragments.count()
    newest = {e.id for e in store.categories.newest(None, 2)}
    for category in config.categories:
        newest |= {e.id for e in store.categories.newest(category.id, 2)}
    assert store.fragments.prune(keep_per_feed=2) == stored - len(newest)
    assert set(store.fragments.get(list(range(1, 1000)), ["rss"], _context(config))) == newest
    publisher.publish_all(NOW + timedelta(hours=1))  # pruned ones are rendered again
    assert_published_as_a_full_render(config, store)
