"""A real feed reader subscribes: newsboat reads every category feed we serve.

The whole path runs for real: `feedsvc poll` fetches the corpus from a local
feed server, files and publishes it, `feedsvc serve` serves it, and newsboat
(Debian's package, installed by scripts/system-deps) reloads every feed.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._net import free_port, wait_until_up
from tests.feedserver import ThreadedFeedServer

FEEDS = Path(__file__).parents[1] / "data" / "feeds"
CATEGORIES = ("all", "xa-hoi", "chinh-tri", "kinh-te", "tre-em")
pytestmark = pytest.mark.skipif(
    shutil.which("newsboat") is None, reason="newsboat is not installed (scripts/system-deps)"
)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with ThreadedFeedServer(FEEDS) as feeds:
        config = tmp_path / "config.yaml"
        config.write_text(
            f"""\
site:
  title: "Báo Hà Tĩnh — Bản tin"
  base_url: "{base}"
http:
  port: {port}
fetch:
  allow_private_networks: true
sources:
  - id: xa-hoi
    url: "{feeds.url("/feeds/baohatinh-xa-hoi.rss")}"
    categories: [xa-hoi]
  - id: chinh-tri
    url: "{feeds.url("/feeds/baohatinh-chinh-tri.rss")}"
    categories: [chinh-tri]
  - id: kinh-te
    url: "{feeds.url("/feeds/windows-1258.rss")}"
    categories: [kinh-te]
categories:
  - id: xa-hoi
    title: "Xã hội"
  - id: chinh-tri
    title: "Chính trị"
  - id: kinh-te
    title: "Kinh tế"
  - id: tre-em
    title: "Trẻ em"
    keywords: ["trẻ em"]
""",
            encoding="utf-8",
        )
        command = [sys.executable, "-m", "feedsvc"]
        subprocess.run([*command, "poll", "--config", str(config)], check=True, timeout=120)
    server = subprocess.Popen([*command, "serve", "--config", str(config)])
    try:
        wait_until_up(f"{base}/healthz")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_newsboat_reads_every_category_feed(service: str, tmp_path: Path) -> None:
    urls = tmp_path / "urls"
    feeds = [
        f"{service}/feeds/{category}.{fmt}" for category in CATEGORIES for fmt in ("rss", "atom")
    ]
    urls.write_text("\n".join(feeds) + "\n", encoding="utf-8")
    errors = tmp_path / "errors.log"
    settings = tmp_path / "newsboat.conf"
    settings.write_text(f'error-log "{errors}"\n', encoding="utf-8")
    cache = tmp_path / "cache.db"
    result = subprocess.run(
        ["newsboat", "-x", "reload", "print-unread", "-u", urls, "-c", cache, "-C", settings],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "LANG": "C.UTF-8"},
    )
    assert result.returncode == 0, result.stderr
    assert not errors.exists() or errors.read_text() == "", errors.read_text()
    with sqlite3.connect(cache) as db:
        loaded = dict(db.execute("SELECT rssurl, title FROM rss_feed"))
        titles = {row[0] for row in db.execute("SELECT title FROM rss_item")}
    with sqlite3.connect(tmp_path / "var" / "feedsvc.db") as db:
        ours = {row[0] for row in db.execute("SELECT title FROM entries")}
    assert set(loaded) == set(feeds)  # every feed loaded and titled
    assert loaded[f"{service}/feeds/xa-hoi.atom"] == "Xã hội"
    assert loaded[f"{service}/feeds/tre-em.rss"] == "Trẻ em"
    # newsboat keeps one item per guid across feeds, so compare the union of stories.
    assert titles == ours
    assert any("trẻ em" in title for title in titles)
    headline = (
        "Tăng cường sự lãnh đạo của Đảng đối với công tác chăm sóc, "
        "giáo dục và bảo vệ trẻ em trong tình hình mới"
    )
    assert headline in titles
    assert all("\ufffd" not in title for title in titles)  # no mojibake, windows-1258 included
