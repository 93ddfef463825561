"""Full text in the running commands: `feedsvc run` serves the article in its feeds, and
kill -9 after `feedsvc poll` stored a lead-only entry but before its page came back
leaves the entry's "to fetch" mark, so the next poll fetches the page, even though the
feed itself has not changed (a 304), and publishes the article."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._net import free_port
from tests.e2e.test_cli import feedsvc
from tests.e2e.test_service import get, wait_for
from tests.feedserver import ThreadedFeedServer

ARTICLES = Path(__file__).parents[1] / "data" / "articles"
PAGE = "/plain/articles/cau-cua-hoi-thong-xe.html"
LEAD = "Sáng 14/9, cầu Cửa Hội chính thức thông xe."


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ThreadedFeedServer]:
    root = tmp_path / "site"
    (root / "articles").mkdir(parents=True)
    for path in ARTICLES.iterdir():
        (root / "articles" / path.name).write_bytes(path.read_bytes())
    with ThreadedFeedServer(root) as running:
        feed = (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            "<title>Báo Nghệ An</title><link>https://baonghean.example.vn/</link>"
            "<description>Tin mới</description><item><title>Thông xe cầu Cửa Hội</title>"
            f"<link>{running.url(PAGE)}?delay=2</link>"
            f"<description>{LEAD}</description></item></channel></rss>"
        )
        running.write("nghean.rss", feed)
        yield running


def write_config(tmp_path: Path, feed_url: str, port: int = 8080) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        "site:\n"
        '  title: "Bản tin thử"\n'
        f'  base_url: "http://127.0.0.1:{port}"\n'
        f"http:\n  port: {port}\n"
        "fetch:\n"
        "  allow_private_networks: true\n"
        "  timeout: 10s\n"
        "categories:\n"
        "  - id: giao-thong\n"
        '    title: "Giao thông"\n'
        "sources:\n"
        "  - id: nghean\n"
        f'    url: "{feed_url}"\n'
        "    categories: [giao-thong]\n"
        "    full_text: true\n",
        encoding="utf-8",
    )
    return path


def entry(database: Path) -> tuple[str, str, int]:
    with sqlite3.connect(database) as db:
        row = db.execute("SELECT content, content_source, full_text_due FROM entries").fetchone()
    return row[0], row[1], row[2]


def test_a_kill_between_storing_and_fetching_is_picked_up_by_the_next_poll(
    tmp_path: Path, server: ThreadedFeedServer
) -> None:
    config = write_config(tmp_path, server.url("/feeds/nghean.rss"))
    database = tmp_path / "var" / "feedsvc.db"
    assert feedsvc("db", "upgrade", config=config).returncode == 0
    command = [sys.executable, "-m", "feedsvc", "poll", "--config", str(config)]
    killed = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while server.requests[PAGE] < 1:  # asked only once the entry is stored
        assert time.monotonic() < deadline, "the article page was never requested"
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)  # the page is still on its way
    killed.wait()
    assert entry(database) == (LEAD, "feed", 1)

    again = feedsvc("poll", config=config)

    assert again.returncode == 0, again.stderr
    assert "not_modified" in again.stdout  # the feed itself had nothing new
    content, source, due = entry(database)
    assert (source, due) == ("article", 0)
    assert "<p>Cầu Cửa Hội có tổng chiều dài gần 5,2 km" in content
    assert server.requests[PAGE] == 2
    with sqlite3.connect(database) as db:
        [body] = db.execute("SELECT body FROM documents WHERE name = 'giao-thong.json'").fetchone()
    [published] = json.loads(body)["items"]
    assert "Cầu Cửa Hội có tổng chiều dài gần 5,2 km" in published["content_html"]


def test_run_serves_the_article_in_its_feeds(tmp_path: Path, server: ThreadedFeedServer) -> None:
    port = free_port()
    config = write_config(tmp_path, server.url("/feeds/nghean.rss"), port)
    command = [sys.executable, "-m", "feedsvc", "run", "--config", str(config)]
    service = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    feed = f"http://127.0.0.1:{port}/feeds/giao-thong.json"
    try:
        wait_for(lambda: "trong quý IV/2025" in get(feed).decode(), 60, "the article in the feed")
        [published] = json.loads(get(feed))["items"]
        service.send_signal(signal.SIGTERM)
        code = service.wait(timeout=30)
    finally:
        if service.poll() is None:
            service.kill()
        log = service.communicate()[1] if service.stderr else ""
    assert code == 0, log
    assert published["content_html"].startswith("<p>Cầu Cửa Hội có tổng chiều dài gần 5,2 km")
    assert published["summary"] == LEAD
    assert "articles source=nghean stored=1 failed=0" in log
