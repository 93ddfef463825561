"""kill -9 in the middle of `feedsvc poll`, then the same command again at once: the
dead process's source leases are taken over, not waited out (fetch.lease: 5m); a live
process's are reported, and waited for with --wait."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from feedsvc import config as config_module
from feedsvc.lease import process_owner
from feedsvc.model import utcnow
from feedsvc.store import Store
from tests.e2e.test_cli import FEEDS, feedsvc, make_config
from tests.feedserver import ThreadedFeedServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ThreadedFeedServer]:
    root = tmp_path / "feeds"
    root.mkdir()
    (root / "baohatinh-xa-hoi.rss").write_bytes((FEEDS / "baohatinh-xa-hoi.rss").read_bytes())
    with ThreadedFeedServer(root) as running:
        yield running


def test_a_killed_poll_leaves_no_source_behind(tmp_path: Path, server: ThreadedFeedServer) -> None:
    slow = {f"slow{n}": server.url(f"/slow?bytes=4&interval=0.5&n={n}") for n in range(3)}
    fast = {"xa-hoi": server.url("/feeds/baohatinh-xa-hoi.rss")}
    config = make_config(tmp_path, slow | fast)
    assert feedsvc("db", "upgrade", config=config).returncode == 0
    command = [sys.executable, "-m", "feedsvc", "poll", "--config", str(config)]
    killed = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while server.requests["/slow"] < 3:
        assert time.monotonic() < deadline, "the slow sources were never requested"
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)  # the slow sources are leased and in flight
    killed.wait()

    again = feedsvc("poll", config=config)
    assert again.returncode == 0, again.stderr
    assert "nothing to poll" not in again.stdout
    assert "leased by another process" not in again.stderr
    listed = json.loads(feedsvc("sources", "list", "--json", config=config).stdout)
    assert all(source["last_polled_at"] for source in listed), listed
    # The fast source's entries were stored before the kill; the rerun finds its feed
    # unchanged, and still they are filed (a durable mark, not ids kept in memory).
    [stored] = [source["entries"] for source in listed if source["id"] == "xa-hoi"]
    store = Store.open(config_module.load(config).database_url)
    try:
        document = store.documents.get("xa-hoi.json")
    finally:
        store.close()
    assert document is not None
    assert len(json.loads(document.body)["items"]) == stored > 0


def test_sources_leased_by_a_live_process_are_reported_then_waited_for(
    tmp_path: Path, server: ThreadedFeedServer
) -> None:
    """A source leased by a process that is alive (this test's own, on this host) is not a
    dead one's: `poll` polls the rest, says how many are held and until when, and with
    --wait polls them once the lease expires."""
    config = make_config(tmp_path, {"xa-hoi": server.url("/feeds/baohatinh-xa-hoi.rss")})
    assert feedsvc("db", "upgrade", config=config).returncode == 0
    loaded = config_module.load(config)
    store = Store.open(loaded.database_url)
    try:
        store.sources.sync([(s.id, s.url) for s in loaded.sources], utcnow())
        [held] = store.sources.claim(process_owner(), utcnow(), timedelta(seconds=12))
    finally:
        store.close()
    assert held.id == "xa-hoi"
    told = feedsvc("poll", config=config)
    assert told.returncode == 0, told.stderr
    [line] = [line for line in told.stderr.splitlines() if "leased by another" in line]
    assert line.startswith("1 source leased by another process ("), told.stderr
    assert f"pid {os.getpid()}, running) until " in line
    assert server.requests["/feeds/baohatinh-xa-hoi.rss"] == 0
    waited = feedsvc("poll", "--wait", config=config)
    assert waited.returncode == 0, waited.stderr
    assert "leased by another process" not in waited.stderr
    assert server.requests["/feeds/baohatinh-xa-hoi.rss"] == 1
    [listed] = json.loads(feedsvc("sources", "list", "--json", config=config).stdout)
    assert listed["last_polled_at"]
    assert listed["entries"] > 0
