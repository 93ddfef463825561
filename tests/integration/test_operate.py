"""The console's source actions (ingest.operate) as every process sees them, on SQLite and
PostgreSQL: a pause made by one process holds in another's claim, `sources list` shows it,
"poll now" queues a source for any poller, and a moved source goes back to its URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from feedsvc.ingest import operate
from feedsvc.model import SourceStatus, utcnow
from feedsvc.store import Store
from feedsvc.store.sources import POLL_HISTORY
from tests.conftest import NOW
from tests.feedserver import ThreadedFeedServer

FEEDS = Path(__file__).parents[1] / "data" / "feeds"
LEASE = timedelta(minutes=5)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedFeedServer]:
    root = tmp_path_factory.mktemp("feeds")
    for path in FEEDS.glob("*.rss"):
        (root / path.name).write_bytes(path.read_bytes())
    with ThreadedFeedServer(root) as running:
        yield running


def newsroom(tmp_path: Path, db_url: str, server: ThreadedFeedServer) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""\
site:
  title: "Bản tin thử"
  base_url: "http://127.0.0.1:8080"
storage:
  url: "{db_url}"
fetch:
  allow_private_networks: true
categories:
  - id: xa-hoi
    title: "Xã hội"
sources:
  - id: xa-hoi
    url: "{server.url("/feeds/baohatinh-xa-hoi.rss")}"
    categories: [xa-hoi]
  - id: kinh-te
    url: "{server.url("/feeds/baohatinh-kinh-te-padded.rss")}"
    categories: [xa-hoi]
""",
        encoding="utf-8",
    )
    return path


def feedsvc(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    """A command in a process of its own, as a second operator or service would run it."""
    return subprocess.run(
        [sys.executable, "-m", "feedsvc", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )


def listed(config: Path) -> dict[str, dict[str, object]]:
    result = feedsvc("sources", "list", "--json", config=config)
    assert result.returncode == 0, result.stderr
    return {row["id"]: row for row in json.loads(result.stdout)}


def test_a_pause_holds_in_another_processs_claim_until_resumed(
    tmp_path: Path, db_url: str, server: ThreadedFeedServer
) -> None:
    config = newsroom(tmp_path, db_url, server)
    paused = feedsvc("sources", "pause", "xa-hoi", config=config)
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout.strip() == "xa-hoi: paused"
    assert listed(config)["xa-hoi"]["status"] == "paused"

    server.reset()
    polled = feedsvc("poll", config=config)
    assert polled.returncode == 0, polled.stderr
    assert server.headers_for("/feeds/baohatinh-xa-hoi.rss") == []  # never fetched
    assert len(server.headers_for("/feeds/baohatinh-kinh-te-padded.rss")) == 1
    shown = listed(config)
    assert shown["xa-hoi"]["status"] == "paused"
    assert shown["kinh-te"]["status"] == "ok"

    resumed = feedsvc("sources", "resume", "xa-hoi", config=config)
    assert resumed.stdout.strip() == "xa-hoi: resumed"
    feedsvc("poll", config=config)
    assert len(server.headers_for("/feeds/baohatinh-xa-hoi.rss")) == 1
    assert listed(config)["xa-hoi"]["status"] == "ok"


def test_pausing_an_unknown_source_is_one_line(tmp_path: Path, server: ThreadedFeedServer) -> None:
    config = newsroom(tmp_path, f"sqlite:///{tmp_path / 'feedsvc.db'}", server)
    result = feedsvc("sources", "pause", "xa-hio", config=config)
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: unknown source id 'xa-hio' (did you mean 'xa-hoi'?)"


def two_sources(store: Store) -> None:
    store.sources.sync([("a", "https://a.example/rss"), ("b", "https://b.example/rss")], NOW)


def test_no_process_claims_a_paused_source_even_when_forced(db_url: str) -> None:
    first, second = Store.open(db_url), Store.open(db_url)
    try:
        two_sources(first)
        assert operate.pause(first, "a", by="console", now=NOW) is operate.Done.PAUSED
        assert operate.pause(first, "a", by="console", now=NOW) is operate.Done.ALREADY_PAUSED
        claimed = second.sources.claim("other:1", NOW, LEASE, due_only=False, force=True)
        assert [source.id for source in claimed] == ["b"]
        assert operate.resume(second, "a", by="cli") is operate.Done.RESUMED
        claimed = first.sources.claim("first:1", NOW, LEASE)
        assert [source.id for source in claimed] == ["a"]
    finally:
        first.close()
        second.close()


def test_poll_now_makes_the_source_due_for_the_next_tick(store: Store) -> None:
    two_sources(store)
    later = NOW + timedelta(minutes=1)
    store.sources.record_many(
        [(sid, {"last_polled_at": NOW, "next_poll_at": NOW + timedelta(hours=1)}) for sid in "ab"]
    )
    assert store.sources.claim("tick:1", later, LEASE) == []
    assert operate.poll_now(store, "b", now=later) is operate.Done.QUEUED
    assert [s.id for s in store.sources.claim("tick:1", later, LEASE)] == ["b"]


def test_poll_now_refuses_a_paused_or_retired_source(store: Store) -> None:
    two_sources(store)
    operate.pause(store, "a", by="console", now=NOW)
    with pytest.raises(operate.OperateError, match="paused"):
        operate.poll_now(store, "a", now=NOW)
    store.sources.record("b", {"status": "retired", "last_polled_at": NOW, "last_error": "410"})
    with pytest.raises(operate.OperateError, match="retired"):
        operate.poll_now(store, "b", now=NOW)


def test_forgetting_the_moved_url_goes_back_to_the_configured_one(store: Store) -> None:
    two_sources(store)
    moved = {"url": "https://new.example/rss", "status": "retired", "last_polled_at": NOW}
    store.sources.record("a", {**moved, "last_error": "410 Gone", "etag": '"x"'})
    with pytest.raises(operate.OperateError, match="has not moved"):
        operate.forget_moved_url(store, "b", now=NOW)
    later = NOW + timedelta(hours=1)
    assert operate.forget_moved_url(store, "a", now=later) is operate.Done.RESTARTED
    [source] = store.sources.list(["a"])
    assert (source.url, source.status, source.etag) == ("https://a.example/rss", "new", None)
    assert source.next_poll_at == later
    assert sorted(s.id for s in store.sources.claim("tick:1", later, LEASE)) == ["a", "b"]


def test_the_poll_history_keeps_each_sources_last_polls(store: Store) -> None:
    two_sources(store)
    for n in range(POLL_HISTORY + 5):
        at = NOW + timedelta(minutes=n)
        if n % 3 == 0:
            store.sources.record("a", {"last_polled_at": at, "last_error": "HTTP 500"})
        else:
            store.sources.record_many([("a", {"last_polled_at": at}), ("b", {})])
    marks = store.activity.polls()
    assert list(marks) == ["a"]  # b's outcomes were leases given back, not polls
    assert len(marks["a"]) == POLL_HISTORY
    assert marks["a"][-1].at == NOW + timedelta(minutes=POLL_HISTORY + 4)
    assert marks["a"][0].at == NOW + timedelta(minutes=5)
    assert [m.outcome for m in marks["a"][:3]] == ["ok", "error", "ok"]


def test_a_paused_source_counts_as_paused_in_the_metrics(store: Store) -> None:
    two_sources(store)
    operate.pause(store, "a", by="console", now=utcnow())
    counts = store.sources.count_by_status()
    assert counts[SourceStatus.PAUSED] == 1
    assert counts[SourceStatus.NEW] == 1
