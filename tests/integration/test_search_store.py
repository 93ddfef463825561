"""The search index in the store, on SQLite (FTS5) and PostgreSQL (tsvector): one behaviour.

The same 1,000 generated Vietnamese entries and 30 readers' queries give the same
ranked results on both; the index follows edits and retention in the entry's own
transaction; ``db upgrade`` indexes what a database held before search existed.
"""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from datetime import timedelta

import pytest

from feedsvc import search
from feedsvc.model import ParsedEntry, ParsedFeed
from feedsvc.store import Store, migrate
from tests import _search_corpus as corpus


def links(store: Store, typed: str, category: str | None = None, limit: int = 20) -> list[str]:
    return [h.entry.link or "" for h in store.search.search(search.parse(typed), category, limit)]


def test_sqlite_and_postgresql_rank_the_same(sqlite_url: str, pg_url: str) -> None:
    ranked = {}
    for url in (sqlite_url, pg_url):
        store = Store.open(url)
        corpus.fill(store)
        ranked[store.backend] = {q: links(store, q) for q in corpus.QUERIES}
        ranked[store.backend + " in a category"] = {
            q: links(store, q, "kinh-te") for q in corpus.QUERIES[:10]
        }
        store.close()
    assert ranked["sqlite"] == ranked["postgresql"]
    assert ranked["sqlite in a category"] == ranked["postgresql in a category"]
    found = [q for q, hits in ranked["sqlite"].items() if hits]
    assert len(found) >= 27, set(corpus.QUERIES) - set(found)


@pytest.fixture
def filled(store: Store) -> Store:
    corpus.fill(store)
    return store


def test_folded_and_toned_queries_find_the_same_entries(filled: Store) -> None:
    plain = set(links(filled, "ha tinh", limit=200))
    toned = set(links(filled, "Hà Tĩnh", limit=200))
    nfd = set(links(filled, unicodedata.normalize("NFD", "HÀ TĨNH"), limit=200))
    assert plain == toned == nfd
    assert plain


def test_a_toned_query_ranks_exact_tones_first(filled: Store) -> None:
    hits = filled.search.search(search.parse("bão"), None, 50)
    exact = [h.exact for h in hits]
    assert exact == sorted(exact, reverse=True)
    assert exact[0] == 1
    assert all("bão" in (h.entry.title + h.entry.summary).casefold() for h in hits if h.exact)


def test_a_word_in_half_the_entries_is_answered_from_the_newest(filled: Store) -> None:
    hits = filled.search.search(search.parse("tinh"), None, 20)
    assert len(hits) == 20
    assert all("<mark>" in h.title.html() + h.snippet.html() for h in hits)


def test_every_word_must_match_and_a_phrase_in_order(filled: Store) -> None:
    for hit in filled.search.search(search.parse('"ty dong" chay'), None, 50):
        words = search.fold(hit.entry.title + " " + hit.entry.summary)
        assert "ty dong" in " ".join(words.split())
        assert "chay" in words.split()


def test_a_category_limits_the_results(filled: Store) -> None:
    everywhere = links(filled, "tinh", limit=200)
    inside = links(filled, "tinh", "kinh-te", limit=200)
    assert inside
    assert set(inside) < set(everywhere) | set(inside)
    ids = {h.entry.id for h in filled.search.search(search.parse("tinh"), "kinh-te", 200)}
    assert all(i % 3 == corpus.CATEGORIES.index("kinh-te") for i in ids)


@pytest.mark.parametrize("typed", ['"', "*", "NEAR(", "x" * 10_240, "'; DROP TABLE entries; --"])
def test_hostile_queries_give_an_answer_not_an_error(filled: Store, typed: str) -> None:
    hits = filled.search.search(search.parse(typed), None, 20)
    assert isinstance(hits, list)
    assert filled.entries.count() == 1000


def add_one(store: Store, at: timedelta = timedelta(0), **changes: object) -> ParsedEntry:
    store.sources.sync([("moi", "https://moi.example.vn/rss")], corpus.SEEN)
    entry = ParsedEntry(
        identity="moi-1",
        title="Đà Nẵng mở lại bãi biển",
        link="https://moi.example.vn/1.html",
        summary="Du khách trở lại",
        published=corpus.SEEN,
        content_hash="v1",
    )
    entry = replace(entry, **changes)  # type: ignore[arg-type]
    [source] = [s for s in store.sources.list() if s.id == "moi"]
    feed = ParsedFeed("Mới", None, (entry,))
    store.entries.apply(source, feed, {"status": "ok"}, corpus.SEEN + at)
    return entry


def test_an_edit_reindexes_the_entry(store: Store) -> None:
    add_one(store)
    assert links(store, "bai bien") == ["https://moi.example.vn/1.html"]
    version = store.search.version()
    add_one(store, timedelta(hours=1), title="Hội An đón khách quốc tế", content_hash="v2")
    assert links(store, "bai bien") == []
    assert links(store, "hoi an") == ["https://moi.example.vn/1.html"]
    assert store.search.version() != version


def test_retention_removes_from_the_index(filled: Store) -> None:
    version = filled.search.version()
    removed = filled.entries.purge(corpus.SEEN + timedelta(days=1), keep_per_feed=0)
    assert removed == 1000
    assert links(filled, "tinh") == []
    assert filled.search.version() != version
    if filled.backend == "sqlite":
        with filled.engine.connect() as conn:
            left = conn.exec_driver_sql("SELECT count(*) FROM entry_search").scalar()
        assert left == 0


def test_upgrade_indexes_entries_stored_before_search(store: Store) -> None:
    add_one(store)
    migrate.downgrade(store.engine, "0014")  # the release before search
    migrate.upgrade(store.engine)
    assert links(store, "DA NANG") == ["https://moi.example.vn/1.html"]
