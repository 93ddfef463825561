"""The full-text scenarios, each run in a fresh interpreter by `_measure.run_isolated`.

* `extract_scenario`: ``ingest.article.extract`` on each article page, ``repeats``
  times each, one `Window` per page (CPU ms per call from ``time.process_time``),
  beside ``parse_feed`` on a feed of lead-only entries (CPU ms per entry). The
  first call of trafilatura, which imports it, is measured on its own.
* `poll_scenario`: the real `Poller` and parse pool, a cold poll of feeds whose
  entries give only a lead, against the feed server in another process, with
  ``full_text`` on or off: the difference is what full text costs per entry,
  fetch and store included.

Figures go to ``params["out"]`` as JSON.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench._measure import BenchError, Usage, Window
from feedsvc import config as config_module
from feedsvc.config import Config
from feedsvc.ingest.article import extract
from feedsvc.ingest.parse import parse_feed
from feedsvc.ingest.poll import Poller
from feedsvc.ingest.pool import parse_pool
from feedsvc.model import PollResult, utcnow
from feedsvc.store import Store

LEAD = "<p>Sáng 14/9, cầu Cửa Hội chính thức thông xe.</p>"
# (label, page file, selector): what each source of the newsroom would do.
CASES = (
    ("selector, 11 KB page", "lua-he-thu-ngap-ung.html", "div.article-content"),
    ("trafilatura, 11 KB page", "lua-he-thu-ngap-ung.html", None),
    ("trafilatura, 15 KB page", "cau-cua-hoi-thong-xe.html", None),
    ("selector, 400 KB page", "binh-luan-nong.html", "div.article-content"),
    ("trafilatura, 400 KB page", "binh-luan-nong.html", None),
)
PAGES = ("lua-he-thu-ngap-ung.html", "cau-cua-hoi-thong-xe.html")


def lead_feed(entries: int, *, offset: int = 0) -> bytes:
    """An RSS feed of ``entries`` lead-only items whose links (relative: the feed's own
    server) point at the two article pages in turn."""
    items = "".join(
        f"<item><title>Tin số {n}</title><link>/plain/articles/{PAGES[n % 2]}?n={n}</link>"
        f'<guid isPermaLink="false">tin-{n}</guid>'
        f"<description><![CDATA[{LEAD}]]></description>"
        "<pubDate>Sun, 14 Sep 2025 10:15:00 +0700</pubDate></item>"
        for n in range(offset, offset + entries)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Báo Nghệ An</title><link>https://baonghean.example.vn/</link>{items}"
        "</channel></rss>"
    ).encode()


def extract_scenario(params: dict[str, Any]) -> Usage:
    """Extraction per page and parsing per feed entry, in this one process."""
    site = Path(params["site"]) / "articles"
    repeats = params["repeats"]
    first = _timed(lambda: _extract(site / CASES[1][1], None))  # imports trafilatura
    figures: dict[str, Any] = {"first_trafilatura_ms": first, "cases": {}}
    usages = []
    for label, name, selector in CASES:
        with Window() as window:
            times = [
                _timed(lambda n=name, s=selector: _extract(site / n, s)) for _ in range(repeats)
            ]
        usages.append(window.usage)
        size = (site / name).stat().st_size
        figures["cases"][label] = {"ms": times, "usage": asdict(window.usage), "bytes": size}
    figures["parse"] = _parse_figures(params["feed_entries"], repeats)
    Path(params["out"]).write_text(json.dumps(figures))
    return usages[0]


def _extract(path: Path, selector: str | None) -> None:
    found = extract(
        path.read_bytes(),
        url="https://baonghean.example.vn/giao-thong/bai.html",
        content_type="text/html; charset=utf-8",
        selector=selector,
        feed_content=LEAD,
    )
    if found.content is None:
        raise BenchError(f"no article from {path.name} ({found.error})")


def _parse_figures(entries: int, repeats: int) -> dict[str, Any]:
    body = lead_feed(entries)
    parse = functools.partial(
        parse_feed,
        body,
        url="http://127.0.0.1/feeds/leads.rss",
        headers={"Content-Type": "application/rss+xml; charset=utf-8"},
        timezone="Asia/Ho_Chi_Minh",
        now=utcnow(),
    )
    with Window() as window:
        per_entry = [_timed(parse) / entries for _ in range(repeats)]
    return {"ms_per_entry": per_entry, "usage": asdict(window.usage), "entries": entries}


def _timed(work: Callable[[], object]) -> float:
    """CPU milliseconds of one call, in this process."""
    start = time.process_time()
    work()
    return (time.process_time() - start) * 1000


def poll_scenario(params: dict[str, Any]) -> Usage:
    """One cold poll of every lead feed; ``full_text`` as the params say."""
    config = _config(params)
    store = Store.open(config.database_url)
    pool = parse_pool()
    try:
        _start_workers(pool, Path(params["site"]) / "articles")
        results, usage = asyncio.run(_poll(config, store, pool))
    finally:
        pool.shutdown()  # only now: a worker exiting inside the window would lose its CPU
        store.close()
    _check(results, params)
    return usage


async def _poll(config: Config, store: Store, pool: Executor) -> tuple[list[PollResult], Usage]:
    async with Poller(config, store, pool=pool) as poller:
        await asyncio.to_thread(poller.sync_sources)
        with Window() as window:
            results = await poller.poll()
    return results, window.usage


def _config(params: dict[str, Any]) -> Config:
    lines = [
        "site:",
        '  title: "Đo hiệu năng"',
        '  base_url: "http://127.0.0.1:8080"',
        "storage:",
        f'  url: "sqlite:///{params["db"]}"',
        "fetch:",
        "  allow_private_networks: true",
        "  timeout: 60s",
        "sources:",
    ]
    for name in params["feeds"]:
        lines += [f"  - id: {Path(name).stem}", f'    url: "{params["base_url"]}/feeds/{name}"']
        if params["full_text"]:
            lines.append("    full_text: true")
    return config_module.parse("\n".join(lines) + "\n", Path(params["site"]) / "config.yaml")


def _start_workers(pool: Executor, articles: Path) -> None:
    """Start every worker and have each import trafilatura, as the long-running service
    has after its first articles."""
    workers = os.cpu_count() or 2
    for _ in pool.map(time.sleep, [0.3] * workers):
        pass
    body = (articles / PAGES[1]).read_bytes()
    warm = functools.partial(
        extract,
        body,
        url="http://127.0.0.1/warm.html",
        content_type="text/html",
        selector=None,
        feed_content="",
    )
    for future in [pool.submit(warm) for _ in range(4 * workers)]:
        future.result()


def _check(results: list[PollResult], params: dict[str, Any]) -> None:
    expected = params["entries"] if params["full_text"] else 0
    for result in results:
        if result.error or result.new != params["entries"] or result.articles != expected:
            raise BenchError(
                f"{result.source_id}: {result.status}, {result.new} new, {result.articles}"
                f" articles; {result.error or result.warning}"
            )
