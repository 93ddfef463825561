"""One story across sources, decided by two processes on the real PostgreSQL.

Two ``feedsvc poll`` processes start at the same time with the same config and
poll the labelled set's sources (tests/data/stories), half each: the four
outlets' reports of one event (cluster C1) reach the store through both
processes, which detect their stories at the same time. The ``all`` feed must
show that story once, from the outlet that published first, naming the other
three as ``also_reported_by``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from feedsvc.model import utcnow
from feedsvc.store import Store
from feedsvc.store.schema import sources as sources_table
from tests.feedserver import ThreadedFeedServer
from tests.unit._stories_set import STORIES, items

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def write_config(tmp_path: Path, pg_url: str, feeds: ThreadedFeedServer, ids: list[str]) -> Path:
    sources = "".join(
        f'  - id: {source}\n    url: "{feeds.url(f"/feeds/{source}.rss")}"\n'
        "    categories: [thoi-su]\n"
        for source in ids
    )
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""\
site:
  title: "Báo Hà Tĩnh — Bản tin"
  base_url: "http://127.0.0.1:8080"
storage:
  url: "{pg_url}"
fetch:
  allow_private_networks: true
feeds:
  max_items: 1000
categories:
  - id: thoi-su
    title: "Thời sự"
sources:
{sources}""",
        encoding="utf-8",
    )
    return path


def test_two_processes_agree_on_one_story_across_sources(tmp_path: Path, pg_url: str) -> None:
    root = tmp_path / "feeds"
    shutil.copytree(STORIES, root, ignore=shutil.ignore_patterns("*.json", "*.md"))
    ids = sorted(path.stem for path in root.glob("*.rss"))
    cluster = {item.story.link: item for item in items() if item.label["cluster"] == "C1"}
    assert len({item.story.source_id for item in cluster.values()}) == 4
    with ThreadedFeedServer(root) as feeds:
        config = write_config(tmp_path, pg_url, feeds, ids)
        store = Store.open(pg_url)  # migrated once, before the race
        try:
            # Sources polled long before: what they publish now is news, not the
            # backlog of a new source (which detection leaves alone).
            store.sources.sync([(s, feeds.url(f"/feeds/{s}.rss")) for s in ids], utcnow())
            with store.engine.begin() as conn:
                conn.execute(sa.update(sources_table).values(first_polled_at=LONG_AGO))
        finally:
            store.close()
        # Each process polls every other source: C1's outlets are split between them.
        halves = [ids[0::2], ids[1::2]]
        command = [sys.executable, "-m", "feedsvc", "poll", "--config", str(config)]
        processes = [
            subprocess.Popen([*command, *half], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for half in halves
        ]
        outputs = [process.communicate(timeout=300) for process in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err.decode()[-3000:]
    store = Store.open(pg_url)
    try:
        sources = {item.story.source_id for item in cluster.values()}
        assert any(s in halves[0] for s in sources)
        assert any(s in halves[1] for s in sources)
        assert store.stories.pending(utcnow()) == 0
        document = store.documents.get("all.json")
        assert document is not None
    finally:
        store.close()
    feed = json.loads(document.body)
    shown = [item for item in feed["items"] if item.get("url") in cluster]
    assert len(shown) == 1, [item["url"] for item in shown]
    [story] = shown
    first = min(cluster.values(), key=lambda item: item.story.published)
    assert story["url"] == first.story.link
    others = {other["url"] for other in story["_feedsvc"]["also_reported_by"]}
    assert others == set(cluster) - {first.story.link}
