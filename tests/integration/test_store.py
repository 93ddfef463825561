"""The store on SQLite and on PostgreSQL: migrations, all-or-nothing feeds, leases."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from feedsvc import config as config_module
from feedsvc.model import Edition, EditionSection, ParsedEntry, ParsedFeed, SourceStatus
from feedsvc.retention import retain
from feedsvc.store import Store, migrate
from feedsvc.store.schema import entries, include_name, metadata
from tests.conftest import NOW


def entry(n: int, **changes: object) -> ParsedEntry:
    base = ParsedEntry(
        identity=f"https://baohatinh.vn/tin-{n}.html",
        title=f"Tin số {n}: Trẻ em Hà Tĩnh",
        link=f"https://baohatinh.vn/tin-{n}.html",
        summary="Tóm tắt",
        content="<p>Nội dung</p>",
        categories=("Xã hội",),
        published=NOW - timedelta(hours=n),
        content_hash=f"hash-{n}",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def feed(*items: ParsedEntry) -> ParsedFeed:
    return ParsedFeed(title="Báo Hà Tĩnh", link="https://baohatinh.vn", entries=items)


def add_source(store: Store, source_id: str = "xa-hoi") -> None:
    store.sources.sync([(source_id, f"https://baohatinh.vn/rss/{source_id}.xml")], NOW)


def stored(store: Store) -> list[sa.Row[tuple[object, ...]]]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(entries).order_by(entries.c.identity)))


# SQLite's reflection cannot read an expression index (the story lists' display date);
# PostgreSQL's can, and compares it.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
def test_migrations_match_the_schema_and_round_trip(store: Store) -> None:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": include_name})
        assert compare_metadata(context, metadata) == []
    migrate.downgrade(store.engine, "base")
    assert migrate.current(store.engine) is None
    migrate.upgrade(store.engine)
    newest = max(path.name[:4] for path in (migrate.MIGRATIONS / "versions").glob("0*.py"))
    assert migrate.current(store.engine) == migrate.head() == newest


def test_new_entries_are_stored_once(store: Store) -> None:
    add_source(store)
    [source] = store.sources.list()
    first = store.entries.apply(source, feed(entry(1), entry(2)), {"status": "ok"}, NOW)
    assert (first.new, first.updated) == (2, 0)
    again = store.entries.apply(source, feed(entry(1), entry(2)), {"status": "ok"}, NOW)
    assert (again.new, again.updated) == (0, 0)
    rows = stored(store)
    assert [r.title for r in rows] == ["Tin số 1: Trẻ em Hà Tĩnh", "Tin số 2: Trẻ em Hà Tĩnh"]
    assert rows[0].published_at == NOW - timedelta(hours=1)  # aware UTC back out
    assert rows[0].categories == ["Xã hội"]


def test_edit_updates_in_place_and_keeps_first_seen(store: Store) -> None:
    add_source(store)
    [source] = store.sources.list()
    store.entries.apply(source, feed(entry(1)), {}, NOW)
    later = NOW + timedelta(hours=1)
    edited = entry(1, title="Tin số 1 (cập nhật)", content_hash="hash-1b")
    outcome = store.entries.apply(source, feed(edited), {}, later)
    assert (outcome.new, outcome.updated) == (0, 1)
    [row] = stored(store)
    assert row.title == "Tin số 1 (cập nhật)"
    assert (row.revision, row.first_seen_at, row.changed_at) == (1, NOW, later)


def test_backlog_of_a_new_source_is_marked(store: Store) -> None:
    add_source(store)
    [source] = store.sources.list()
    old = entry(1, published=NOW - timedelta(days=3))
    undated = entry(2, published=None, date_flag="missing")
    fresh = entry(3, published=NOW - timedelta(hours=2))
    store.entries.apply(source, feed(old, undated, fresh), {"first_polled_at": NOW}, NOW)
    assert [r.backlog for r in stored(store)] == [True, True, False]
    [source] = store.sources.list()
    later = entry(4, published=None)  # undated but first seen after the first poll: news
    store.entries.apply(source, feed(later), {}, NOW + timedelta(hours=1))
    assert stored(store)[-1].backlog is False


def test_a_failed_store_leaves_nothing_behind(store: Store) -> None:
    add_source(store)
    [source] = store.sources.list()
    broken = entry(2, title=None)  # NOT NULL: the insert fails after the select ran
    with pytest.raises(sa.exc.IntegrityError):
        store.entries.apply(source, feed(entry(1), broken), {"status": "ok", "etag": "x"}, NOW)
    assert stored(store) == []
    [source] = store.sources.list()
    assert (source.status, source.etag) == (SourceStatus.NEW, None)


def test_a_leased_source_is_not_claimed_twice(store: Store) -> None:
    add_source(store, "a")
    lease = timedelta(minutes=5)
    assert [s.id for s in store.sources.claim("p1", NOW, lease)] == ["a"]
    assert store.sources.claim("p2", NOW, lease) == []
    assert [s.id for s in store.sources.claim("p2", NOW + lease * 2, lease)] == ["a"]


def test_concurrent_claimers_split_the_sources(store: Store) -> None:
    store.sources.sync([(f"s{i}", f"https://x.vn/{i}.xml") for i in range(40)], NOW)
    claims: dict[str, list[str]] = {}

    def claim(owner: str) -> None:
        got: list[str] = []
        while batch := store.sources.claim(owner, NOW, timedelta(minutes=5), limit=3):
            got += [s.id for s in batch]
        claims[owner] = got

    threads = [threading.Thread(target=claim, args=(f"p{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [source for got in claims.values() for source in got]
    assert sorted(everything) == sorted(f"s{i}" for i in range(40))  # each exactly once


def test_retired_and_held_back_sources_need_force(store: Store) -> None:
    store.sources.sync([("gone", "https://x.vn/g.xml"), ("busy", "https://x.vn/b.xml")], NOW)
    store.sources.record("gone", {"status": "retired", "next_poll_at": None})
    store.sources.record("busy", {"retry_after": NOW + timedelta(hours=1)})
    lease = timedelta(minutes=1)
    assert store.sources.claim("p", NOW, lease, due_only=False) == []
    forced = store.sources.claim("p", NOW, lease, due_only=False, force=True)
    assert sorted(s.id for s in forced) == ["busy", "gone"]


def test_sync_follows_config(store: Store) -> None:
    store.sources.sync([("a", "https://x.vn/a.xml"), ("b", "https://x.vn/b.xml")], NOW)
    store.sources.record("a", {"url": "https://x.vn/moved.xml", "status": "retired"})
    store.sources.sync([("a", "https://x.vn/a2.xml")], NOW)
    by_id = {s.id: s for s in store.sources.list()}
    assert (by_id["a"].url, by_id["a"].status) == ("https://x.vn/a2.xml", SourceStatus.NEW)
    assert by_id["b"].active is False
    assert [s.id for s in store.sources.claim("p", NOW, timedelta(minutes=1))] == ["a"]


def test_retention_purges_old_entries_but_keeps_each_feed_full(store: Store) -> None:
    add_source(store)
    [source] = store.sources.list()
    old = [entry(n, published=NOW - timedelta(days=200 + n)) for n in range(1, 6)]
    store.entries.apply(source, feed(*old), {}, NOW - timedelta(days=200))
    store.entries.apply(source, feed(entry(0)), {}, NOW)
    ids = {row.identity: row.id for row in stored(store)}
    store.categories.assign({ids["https://baohatinh.vn/tin-5.html"]: ["quiet"]})
    purged = store.entries.purge(NOW - timedelta(days=90), keep_per_feed=2)
    left = [row.identity for row in stored(store)]
    # Kept: the two newest overall (tin-0, tin-1) and the quiet category's only entry.
    assert sorted(left) == sorted(f"https://baohatinh.vn/tin-{n}.html" for n in (0, 1, 5))
    assert purged == 3


def test_the_daily_retention_also_forgets_old_editions(store: Store, tmp_path: Path) -> None:
    """An edition older than ``retention.days`` would list stories that are gone."""
    config = config_module.parse(
        'site:\n  title: "Bản tin"\n  base_url: "https://tin.example.vn"\n'
        "retention:\n  days: 90\nfeeds:\n  max_items: 2\n",
        tmp_path / "config.yaml",
    )
    section = (EditionSection("xa-hoi", (1,)),)
    old = Edition("o" * 16, "daily", NOW - timedelta(days=91), "vi", ("xa-hoi",), section)
    new = Edition("n" * 16, "daily", NOW - timedelta(days=89), "vi", ("xa-hoi",), section)
    store.editions.put([old, new], NOW)
    done = retain(config, store, NOW)
    assert done.editions == 1
    with store.engine.connect() as conn:
        left = conn.execute(sa.text("SELECT id FROM editions")).scalars().all()
    assert left == [new.id]
