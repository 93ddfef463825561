"""The ingest scenarios, each run in a fresh interpreter by `_measure.run_isolated`.

Each takes the JSON parameters `bench.ingest` sends (``work``: the folder with
``feeds/``; ``base_url``: the feed server; ``names``: the feed files;
``entries``: entries per feed), does its setup, measures only the work itself
inside a `Window`, checks the outcome, and returns the `Usage`.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections import Counter
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import aiohttp
import feedparser
from lxml import etree
from tests.feedserver import rolling_item

from bench._corpus import SAMPLES
from bench._measure import BenchError, Usage, Window
from feedsvc import config as config_module
from feedsvc.config import Config
from feedsvc.ingest.parse import parse_feed
from feedsvc.ingest.poll import Poller
from feedsvc.ingest.pool import parse_pool
from feedsvc.model import PollResult, utcnow
from feedsvc.store import Store

CONCURRENCY = 20
# How feedsvc.ingest.parse calls feedparser: nh3 does these jobs, far faster.
PARSE_PY_SWITCHES = {"sanitize_html": False, "resolve_relative_uris": False}


def poll_scenario(params: dict[str, Any]) -> Usage:
    """Poll every source once with the real Poller and parse pool; measure the poll."""
    config = _config(params)
    store = Store.open(config.database_url)
    pool = parse_pool()
    try:
        _start_workers(pool)
        changed_items, detect = params.get("changed_items", True), params.get("detect", False)
        results, usage = asyncio.run(_poll(config, store, pool, changed_items, detect))
    finally:
        pool.shutdown()  # only now: a worker exiting inside the window would lose its CPU
        store.close()
    _check_poll(results, params["expect"], params["entries"])
    return usage


async def _poll(
    config: Config, store: Store, pool: Executor, changed_items: bool, detect: bool = False
) -> tuple[list[PollResult], Usage]:
    """The poll in a window; with ``detect``, the stories of what it stored too (as the
    publisher does after every poll: bench.stories compares the two)."""
    async with Poller(config, store, pool=pool) as poller:
        poller.parse_changed_items = changed_items
        await asyncio.to_thread(poller.sync_sources)
        with Window() as window:
            results = await poller.poll()
            if detect:
                await asyncio.to_thread(store.stories.detect_pending, utcnow())
    if detect and store.stories.pending(utcnow()):
        raise BenchError("entries left undetected after the poll")
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
        f"  concurrency: {CONCURRENCY}",
        "  timeout: 60s",
        "sources:",
    ]
    for name in params["names"]:
        url = f"{params['base_url']}/{params['route']}/{name}"
        lines += [f"  - id: {Path(name).stem}", f'    url: "{url}"']
    return config_module.parse("\n".join(lines) + "\n", Path(params["work"]) / "config.yaml")


def _start_workers(pool: Executor) -> None:
    """Start and warm every worker now: the pool starts them on demand, mid-poll otherwise."""
    workers = os.cpu_count() or 2  # as parse_pool sizes it
    for _ in pool.map(time.sleep, [0.3] * workers):  # only busy workers make it start more
        pass
    sample = (SAMPLES / "baohatinh-xa-hoi.rss").read_bytes()
    warm = functools.partial(
        parse_feed,
        sample,
        url="http://127.0.0.1/warm.rss",
        headers={"Content-Type": "application/rss+xml; charset=utf-8"},
        timezone="Asia/Ho_Chi_Minh",
        now=utcnow(),
    )
    for future in [pool.submit(warm) for _ in range(2 * workers)]:
        future.result()


def _check_poll(results: list[PollResult], expect: str, entries: int) -> None:
    statuses = Counter(result.status for result in results)
    new = sum(result.new for result in results)
    if set(statuses) != {expect} or (expect == "updated" and new != entries * len(results)):
        error = next((r.error for r in results if r.error), None)
        raise BenchError(
            f"expected every source {expect!r}, got {dict(statuses)}, {new} new; {error}"
        )


def feedparser_scenario(params: dict[str, Any]) -> Usage:
    """``feedparser.parse(bytes, **switches)`` over every body, one after another."""
    folder = Path(params["work"]) / "feeds"
    bodies = [(folder / name).read_bytes() for name in params["names"]]
    with Window() as window:
        counts = [len(feedparser.parse(body, **params["switches"]).entries) for body in bodies]
    if set(counts) != {params["entries"]}:
        raise BenchError(f"feedparser found {sorted(set(counts))} entries per feed")
    return window.usage


def lxml_scenario(params: dict[str, Any]) -> Usage:
    """``lxml.etree.fromstring`` over the bodies a ``/rolling/`` poll gets, one after another:
    what reading the bytes costs, the floor of parsing only the changed items."""
    folder = Path(params["work"]) / "feeds"
    bodies = []
    for name in params["names"]:
        body = (folder / name).read_bytes()
        at = body.index(b"<item")
        bodies.append(body[:at] + rolling_item(name, 2) + body[at:])
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    with Window() as window:
        counts = [len(etree.fromstring(body, parser).findall("channel/item")) for body in bodies]
    if set(counts) != {params["entries"] + 1}:
        raise BenchError(f"lxml found {sorted(set(counts))} items per feed")
    return window.usage


def aiohttp_scenario(params: dict[str, Any]) -> Usage:
    """The poll's conditional GETs, bare: one session, ``CONCURRENCY`` at once, all 304."""
    urls = [f"{params['base_url']}/feeds/{name}" for name in params["names"]]
    return asyncio.run(_conditional_gets(urls))


async def _conditional_gets(urls: list[str]) -> Usage:
    validators = await _validators(urls)
    slots = asyncio.Semaphore(CONCURRENCY)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def get(url: str) -> int:
            async with slots, session.get(url, headers=validators[url]) as response:
                await response.read()
                return response.status

        with Window() as window:
            statuses = await asyncio.gather(*(get(url) for url in urls))
    if set(statuses) != {304}:
        raise BenchError(f"expected every answer 304, got {dict(Counter(statuses))}")
    return window.usage


async def _validators(urls: list[str]) -> dict[str, dict[str, str]]:
    """Each URL's conditional headers, from the ETag and Last-Modified a poll would store."""
    found = {}
    async with aiohttp.ClientSession() as session:
        for url in urls:
            async with session.head(url) as response:
                found[url] = {
                    "If-None-Match": response.headers["ETag"],
                    "If-Modified-Since": response.headers["Last-Modified"],
                }
    return found
