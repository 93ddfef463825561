"""A small newsroom for HTTP tests: a config template and two corpus feeds, stored and published."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from feedsvc.config import Config
from feedsvc.ingest.parse import parse_feed
from feedsvc.publish.regenerate import Publisher
from feedsvc.store import Store
from tests.conftest import NOW

FEEDS = Path(__file__).parents[1] / "data" / "feeds"
CONFIG = """\
site:
  title: "Báo Hà Tĩnh — Bản tin"
  base_url: "http://127.0.0.1:{port}"
storage:
  url: "sqlite:///{db}"
http:
  port: {port}
sources:
  - id: xa-hoi
    url: "https://baohatinh.vn/rss/xa-hoi.rss"
    categories: [xa-hoi]
  - id: chinh-tri
    url: "https://baohatinh.vn/rss/chinh-tri.rss"
    categories: [chinh-tri]
categories:
  - id: xa-hoi
    title: "Xã hội"
    description: "Tin xã hội Hà Tĩnh"
  - id: chinh-tri
    title: "Chính trị"
  - id: tre-em
    title: "Trẻ em"
    keywords: ["tre em"]
    match_diacritics: false
"""


def load_corpus(config: Config, store: Store) -> None:
    """Store two corpus feeds as a poll would, then publish."""
    store.sources.sync([(s.id, s.url) for s in config.sources], NOW)
    for source in store.sources.list():
        body = (FEEDS / f"baohatinh-{source.id}.rss").read_bytes()
        parsed = parse_feed(body, url=source.url, headers={}, timezone="Asia/Ho_Chi_Minh", now=NOW)
        store.entries.apply(source, parsed, {"first_polled_at": NOW - timedelta(days=400)}, NOW)
    publisher = Publisher(config, store)
    publisher.publish_all(NOW)
