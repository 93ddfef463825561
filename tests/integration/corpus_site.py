"""A small newsroom for HTTP tests: a config template and two corpus feeds, stored and published."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

from starlette.applications import Starlette

from feedsvc import config as config_module
from feedsvc.config import Config
from feedsvc.ingest.parse import parse_feed
from feedsvc.publish.regenerate import Publisher
from feedsvc.schedule import http_server
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


def open_corpus(folder: Path, port: int, db_url: str | None = None) -> tuple[Path, Config, Store]:
    """config.yaml in ``folder`` for the newsroom on ``port`` (its database a SQLite file
    there, or ``db_url``), loaded; its store, holding the corpus, published."""
    db = f"sqlite:///{folder / 'feedsvc.db'}"
    text = CONFIG.format(port=port, db=folder / "feedsvc.db").replace(db, db_url or db)
    path = folder / "config.yaml"
    path.write_text(text, encoding="utf-8")
    config = config_module.load(path)
    store = Store.open(config.database_url)
    load_corpus(config, store)
    return path, config, store


@contextlib.asynccontextmanager
async def served(config: Config, store: Store, app: Starlette | None = None) -> AsyncIterator[None]:
    """The embedded uvicorn serving ``app`` (or the app of ``config``) until the block ends."""
    server = http_server(config, store, app=app)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task
