"""Story detection through the real store, on SQLite and PostgreSQL.

The labelled set (tests/data/stories) is stored the way polls store it, one
item at a time in publication order, and detected from the database's rows:
the decisions must be those of the in-memory reference (``MemoryIndex``) over
the same items, and meet the labelled set's targets.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner

from feedsvc.cli import main
from feedsvc.model import ParsedFeed, Source, utcnow
from feedsvc.store import Store, migrate
from feedsvc.store.schema import entries, story_entries, story_related, story_term_counts
from feedsvc.store.stories import _vector
from tests.unit import _stories_set as labelled

NOW = labelled.NOW


def store_items(
    store: Store, items: list[tuple[str, object]] | None = None, *, seen: datetime = NOW
) -> dict[int, str]:
    """Store the labelled items one poll each, in publication order, first seen the day
    before ``seen``; entry id -> item key."""
    pairs = items if items is not None else labelled.parsed()
    sources = sorted({source for source, _ in pairs})
    store.sources.sync([(s, f"https://feeds.example.vn/{s}.rss") for s in sources], NOW)
    keys = {}
    for source_id, entry in pairs:
        source = Source(source_id, "", "", first_polled_at=NOW - timedelta(days=400))
        outcome = store.entries.apply(
            source, ParsedFeed(None, None, (entry,)), {}, seen - timedelta(days=1)
        )  # type: ignore[arg-type]
        keys[outcome.new_ids[0]] = labelled.label_of(entry.link)["key"]  # type: ignore[attr-defined]
    return keys


def test_the_store_decides_as_the_reference_does(store: Store) -> None:
    keys = store_items(store)
    changed = store.stories.detect_pending(NOW)
    assert store.stories.pending(NOW) == 0
    assert set(changed) >= set(keys)
    reference = labelled.run()
    ids = {key: entry_id for entry_id, key in keys.items()}
    contexts = store.stories.contexts(list(keys))
    for key, detection in reference.detections.items():
        context = contexts[ids[key]]
        expected_cluster = ids[reference.keys[detection.cluster.cluster_id]]
        assert context.cluster_id == expected_cluster, key
        assert [keys[r.entry.id] for r in context.related] == reference.related(key), key
        if detection.series is None:
            assert context.series is None, key
        else:
            assert context.series is not None, key
            assert context.series.id == ids[reference.keys[detection.series.series_id]], key
            assert context.series.part == detection.series.part, key


def test_story_context_names_series_parts_and_other_outlets(store: Store) -> None:
    keys = store_items(store)
    store.stories.detect_pending(NOW)
    ids = {key: entry_id for entry_id, key in keys.items()}
    # A series whose parts share no title word after the marker, in part order.
    bai2 = store.stories.story_context(ids["s1-bai2"])
    assert bai2.series is not None
    assert [keys[ref.entry.id] for _, ref in bai2.series.parts] == ["s1-bai1", "s1-bai2", "s1-bai3"]
    assert bai2.series.title.startswith("Bài 1")
    # One event from four outlets: the others are "also reported by", one per source.
    first = store.stories.story_context(ids["c1-bht"])
    others = {keys[ref.entry.id] for ref in first.also_reported_by}
    assert others == {"c1-vnp", "c1-tt", "c1-vne"}
    assert all(ref.source for ref in first.also_reported_by)
    # An entry detection never saw has no context at all.
    assert store.stories.story_context(10**9).cluster_id is None


def test_a_new_member_raises_the_others_revision_and_unfiles_them(store: Store) -> None:
    pairs = labelled.parsed()
    cluster = [p for p in pairs if labelled.label_of(p[1].link)["cluster"] == "C1"]  # type: ignore[attr-defined]
    assert len(cluster) >= 2
    keys = store_items(store, cluster[:1])
    store.stories.detect_pending(NOW)
    first = next(iter(keys))
    with store.engine.begin() as conn:
        conn.execute(sa.update(entries).values(filed=True))
    assert store.stories.story_context(first).revision == 0
    store_items(store, cluster[1:2])
    changed = store.stories.detect_pending(NOW)
    assert first in changed
    assert store.stories.story_context(first).revision == 1
    with store.engine.connect() as conn:
        filed = conn.execute(sa.select(entries.c.filed).where(entries.c.id == first)).scalar()
    assert filed is False


def test_concurrent_detectors_agree_on_one_cluster(store: Store, db_url: str) -> None:
    """Two processes' worth of connections detecting at once: one cluster, no entry twice."""
    keys = store_items(store)
    others = [Store.open(db_url, upgrade=False) for _ in range(2)]
    errors: list[BaseException] = []

    def work(s: Store) -> None:
        try:
            s.stories.detect_pending(NOW, batch=7)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(s,)) for s in others]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for s in others:
        s.close()
    assert not errors
    contexts = store.stories.contexts(list(keys))
    ids = {key: entry_id for entry_id, key in keys.items()}
    assert len(contexts) == len(keys)
    c1 = {contexts[ids[k]].cluster_id for k in ("c1-bht", "c1-vnp", "c1-tt", "c1-vne")}
    assert len(c1) == 1


UPGRADE_CONFIG = """\
site:
  title: "Báo Hà Tĩnh — Bản tin"
  base_url: "https://bantin.example.vn"
storage:
  url: "{url}"
categories:
  - id: xa-hoi
    title: "Xã hội"
"""


def test_db_upgrade_detects_the_entries_stored_before_stories(
    store: Store, db_url: str, tmp_path: Path
) -> None:
    migrate.downgrade(store.engine, "0012")  # a database from before stories…
    migrate.upgrade(store.engine)
    # …whose entries were stored without detection (storing never detects: publishing does)
    keys = store_items(store, seen=utcnow())  # `db upgrade` detects the last 30 days' news
    assert store.stories.pending(utcnow()) == len(keys)
    path = tmp_path / "config.yaml"
    path.write_text(UPGRADE_CONFIG.format(url=db_url), encoding="utf-8")
    result = CliRunner().invoke(main, ["db", "upgrade", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert f"detecting the stories of {len(keys)} stored entries" in result.output
    assert store.stories.pending(utcnow()) == 0
    ids = {key: entry_id for entry_id, key in keys.items()}
    assert store.stories.story_context(ids["s1-bai2"]).series is not None
    again = CliRunner().invoke(main, ["db", "upgrade", "--config", str(path)])
    assert "detecting" not in again.output


def _term_counts(store: Store) -> dict[int, int]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(story_term_counts.c.term, story_term_counts.c.count))
        return {int(term): int(count) for term, count in rows}


def _recounted(store: Store) -> dict[int, int]:
    """The term counts as the stored vectors say they should be (one per entry per term)."""
    counts: Counter[int] = Counter()
    with store.engine.connect() as conn:
        for vector in conn.execute(sa.select(story_entries.c.vector)).scalars():
            counts.update(_vector(vector).weights.keys())  # noqa: SLF001 - the rows' own encoding
    return dict(counts)


EDITED_TITLE = "Khánh thành cầu dân sinh ở xã vùng cao huyện Hương Khê"
EDITED_SUMMARY = (
    "Sáng nay, người dân xã Hương Liên vui mừng đón cây cầu treo mới bắc qua sông Ngàn Sâu, "
    "công trình do các nhà hảo tâm đóng góp 1.870 triệu đồng xây dựng trong sáu tháng."
)


def test_an_edited_entry_is_detected_again_from_its_new_text(store: Store) -> None:
    pairs = labelled.parsed()
    cluster = [p for p in pairs if labelled.label_of(p[1].link)["cluster"] == "C1"]  # type: ignore[attr-defined]
    keys = store_items(store, cluster)
    store.stories.detect_pending(NOW)
    ids = {key: entry_id for entry_id, key in keys.items()}
    first = store.stories.story_context(ids["c1-bht"])
    assert {keys[r.entry.id] for r in first.also_reported_by} == {"c1-vnp", "c1-tt", "c1-vne"}
    with store.engine.begin() as conn:
        conn.execute(sa.update(entries).values(filed=True))
    # The outlet rewrites its item into another story: same link, new text.
    source_id, entry = next(p for p in cluster if labelled.label_of(p[1].link)["key"] == "c1-vne")  # type: ignore[attr-defined]
    edited = replace(
        entry, title=EDITED_TITLE, summary=EDITED_SUMMARY, content="", content_hash="edited"
    )
    source = Source(source_id, "", "", first_polled_at=NOW - timedelta(days=400))
    outcome = store.entries.apply(source, ParsedFeed(None, None, (edited,)), {}, NOW)
    assert outcome.updated_ids == (ids["c1-vne"],)
    assert store.stories.pending(NOW) == 1
    assert _term_counts(store) == _recounted(store)
    # The story it left changes for the others: their items are written again.
    after = store.stories.story_context(ids["c1-bht"])
    assert after.revision == first.revision + 1
    assert {keys[r.entry.id] for r in after.also_reported_by} == {"c1-vnp", "c1-tt"}
    with store.engine.connect() as conn:
        unfiled = set(conn.execute(sa.select(entries.c.id).where(~entries.c.filed)).scalars())
    assert unfiled >= {ids["c1-bht"], ids["c1-vnp"], ids["c1-tt"]}
    store.stories.detect_pending(NOW)
    assert store.stories.pending(NOW) == 0
    alone = store.stories.story_context(ids["c1-vne"])
    assert alone.cluster_id not in (None, first.cluster_id)
    assert alone.also_reported_by == ()
    assert _term_counts(store) == _recounted(store)


def test_retention_takes_deleted_entries_off_the_term_counts(store: Store) -> None:
    keys = store_items(store)
    store.stories.detect_pending(NOW)
    assert _term_counts(store) == _recounted(store) != {}
    assert store.entries.purge(NOW + timedelta(days=1), keep_per_feed=0) == len(keys)
    assert _term_counts(store) == {}


def test_an_edit_rewrites_the_items_that_list_the_entry_as_related(store: Store) -> None:
    keys = store_items(store)
    store.stories.detect_pending(NOW)
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(story_related.c.entry_id, story_related.c.related_id)).first()
    assert row is not None
    referrer, related = row
    before = store.stories.story_context(referrer).revision
    with store.engine.begin() as conn:
        conn.execute(sa.update(entries).values(filed=True))
    source_id, entry = next(
        p
        for p in labelled.parsed()
        if labelled.label_of(p[1].link)["key"] == keys[related]  # type: ignore[attr-defined]
    )
    edited = replace(entry, title=EDITED_TITLE, content_hash="edited")
    source = Source(source_id, "", "", first_polled_at=NOW - timedelta(days=400))
    store.entries.apply(source, ParsedFeed(None, None, (edited,)), {}, NOW)
    # Its "Đọc thêm" shows the edited title: the referrer's item is rendered again.
    assert store.stories.story_context(referrer).revision == before + 1
    with store.engine.connect() as conn:
        filed = conn.execute(sa.select(entries.c.filed).where(entries.c.id == referrer)).scalar()
    assert filed is False
