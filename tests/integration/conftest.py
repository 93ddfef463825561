"""Fixtures for integration tests: real servers on 127.0.0.1, real files.

Each block below belongs to one area; add new fixtures in a block of their own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.feedserver import FeedServer

# --- feed server (tests/feedserver.py): fetch, poll ----------------------------------

SAMPLE_RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0">
  <channel>
    <title>Tin tức Đà Nẵng</title>
    <link>https://example.vn/</link>
    <description>Tin mới nhất</description>
    <item>
      <title>Hội An đón du khách trở lại</title>
      <link>https://example.vn/hoi-an</link>
      <guid>https://example.vn/hoi-an</guid>
      <pubDate>Fri, 27 Nov 2026 08:00:00 +0700</pubDate>
    </item>
  </channel>
</rss>
"""


@pytest.fixture
def feed_root(tmp_path: Path) -> Path:
    """A directory the feed server serves at /feeds/, holding ``news.xml``."""
    root = tmp_path / "feeds"
    root.mkdir()
    (root / "news.xml").write_text(SAMPLE_RSS, encoding="utf-8")
    return root


@pytest.fixture
async def feed_server(feed_root: Path) -> AsyncIterator[FeedServer]:
    """A `FeedServer` on 127.0.0.1 serving ``feed_root``, on the test's event loop."""
    async with FeedServer(feed_root) as server:
        yield server
