"""The ingest benchmark of issue 2: what polling 200 large feeds costs.

200 RSS feeds of 100 Vietnamese entries (about 380 KB each, see `_corpus`) are
served by tests/feedserver.py in a separate process, so its CPU is not counted.
Each scenario below (`_ingest_scenarios`) runs in a fresh interpreter and is
measured by `_measure.Window` (CPU of the whole process tree, parse workers
included):

* **cold poll**: the real `Poller` with its real forkserver parse pool, against
  a fresh SQLite file, every entry new. It runs once per route: ``/feeds/``
  (with validators) and ``/plain/`` (without); each resulting database is the
  starting point of one warm scenario;
* **304 poll**: a copy of the ``/feeds/`` database polled again; every answer
  is 304 Not Modified;
* **same-bytes poll**: a copy of the ``/plain/`` database polled again; every
  answer is 200 with the same bytes, so the body hash says ``same_body``;
* **bare feedparser**: ``feedparser.parse(bytes)`` over the same bodies in one
  process, the floor the cold poll is held to; and once more with the switches
  parse.py uses (its sanitizer and URI resolver off), for information;
* **bare aiohttp**: one ClientSession making the same conditional GETs at the
  same concurrency, all answered 304, the floor of the 304 poll;
* **re-fetched, 1 item new**: the feeds served by ``/rolling/`` (no validators,
  a ``lastBuildDate`` of now and one new item on every request), polled once
  before (not measured), polled again from a copy of that database: every
  source is a 200 with new bytes and one new entry. Once as the poller runs
  (only new and edited items parsed), once with ``Poller.parse_changed_items``
  off (every item parsed: the path before item keys, the "10x cheaper"
  baseline); held to the 304 poll of the same sources and to
* **bare lxml**: ``lxml.etree.fromstring`` over the same bytes, one process.

Only the poll itself (or the parse loop, or the requests) is inside the
window: imports, migrations, syncing sources from the config, opening the
HTTP session and starting the pool happen before it, as they do once in the
long-running service. Every scenario checks its outcome (all new, all 304, all
same body), so a figure never comes from a poll that silently failed.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._corpus import write_feeds
from bench._ingest_scenarios import CONCURRENCY, PARSE_PY_SWITCHES
from bench._measure import Usage, best, run_isolated
from bench._report import Report, Row, Target, progress
from bench._server import feed_server

# The cold poll runs once per route; each run's database starts one warm scenario.
_ROUTES = ("feeds", "plain")


@dataclass(frozen=True, slots=True)
class Plan:
    feeds: int
    entries: int
    runs: int  # of each warm scenario and of bare aiohttp (cold runs once per route)
    floor_runs: int  # of bare feedparser, the slowest scenario


FULL = Plan(feeds=200, entries=100, runs=3, floor_runs=2)
QUICK = Plan(feeds=20, entries=100, runs=1, floor_runs=1)


def run(quick: bool) -> Report:
    """Build the feeds, serve them, measure every scenario; the report's rows are best runs."""
    plan = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="feedsvc-bench-") as tmp:
        work = Path(tmp)
        progress(f"ingest: writing {plan.feeds} feeds of {plan.entries} entries")
        names = write_feeds(work / "feeds", feeds=plan.feeds, entries=plan.entries)
        size_mb = sum((work / "feeds" / name).stat().st_size for name in names) / 2**20
        with feed_server(work / "feeds") as base_url:
            common = {"work": tmp, "base_url": base_url, "names": names, "entries": plan.entries}
            rows = _measure_scenarios(plan, work, common)
    title = (
        f"ingest: {plan.feeds} feeds x {plan.entries} entries "
        f"({size_mb / plan.feeds * 1024:.0f} KB each, {size_mb:.1f} MB in all)"
    )
    return Report(title, rows, _targets(rows), _notes(rows))


def _measure_scenarios(plan: Plan, work: Path, common: dict[str, Any]) -> list[Row]:
    """One row per scenario, in the order `_targets` reads them."""

    def isolated(function: str, **params: Any) -> Usage:
        return run_isolated(f"bench._ingest_scenarios:{function}", {**common, **params})

    def poll(route: str, db: Path, expect: str, **params: Any) -> Usage:
        return isolated("poll_scenario", route=route, db=str(db), expect=expect, **params)

    def rolling(n: int, changed_items: bool) -> Usage:
        db = _copy(work, "rolling", f"{changed_items}-{n}")
        return poll("rolling", db, "updated", entries=1, changed_items=changed_items)

    progress("ingest: a first poll of the /rolling/ feeds (not measured)")
    poll("rolling", work / "rolling.db", "updated", entries=common["entries"] + 1)

    def cold(n: int) -> Usage:
        route = _ROUTES[n]
        return poll(route, work / f"{route}.db", "updated")

    return [
        _row("cold poll (all new)", len(_ROUTES), cold),
        _row(
            "warm poll, every answer 304",
            plan.runs,
            lambda n: poll("feeds", _copy(work, "feeds", n), "not_modified"),
        ),
        _row(
            "warm poll, every answer 200 same bytes",
            plan.runs,
            lambda n: poll("plain", _copy(work, "plain", n), "same_body"),
        ),
        _row(
            "bare feedparser.parse(bytes), one process",
            plan.floor_runs,
            lambda n: isolated("feedparser_scenario", switches={}),
        ),
        _row(  # for information only: once is enough
            "bare feedparser, parse.py's switches",
            1,
            lambda n: isolated("feedparser_scenario", switches=PARSE_PY_SWITCHES),
        ),
        _row(
            f"bare aiohttp, conditional GETs, {CONCURRENCY} at once",
            plan.runs,
            lambda n: isolated("aiohttp_scenario"),
        ),
        _row("re-fetched, 1 item new: changed items parsed", plan.runs, lambda n: rolling(n, True)),
        _row("re-fetched, 1 item new: every item parsed", plan.runs, lambda n: rolling(n, False)),
        _row(
            "bare lxml.etree.fromstring, the same bytes",
            plan.runs,
            lambda n: isolated("lxml_scenario"),
        ),
    ]


def _row(label: str, runs: int, measure: Callable[[int], Usage]) -> Row:
    usages = []
    for n in range(runs):
        progress(f"ingest: {label} ({n + 1}/{runs})")
        usages.append(measure(n))
    return Row.of_runs(label, usages) if runs >= 3 else Row(label, best(usages), runs)


def _copy(work: Path, route: str, n: object) -> Path:
    """A fresh copy of the cold poll's database for one warm run (SQLite's backup API)."""
    target = work / f"{route}-warm-{n}.db"
    with closing(sqlite3.connect(work / f"{route}.db")) as source:
        with closing(sqlite3.connect(target)) as copy:
            source.backup(copy)
    return target


def _targets(rows: list[Row]) -> list[Target]:
    cold, not_modified, same_body, floor, _, http, changed, every, lxml = (r.usage for r in rows)
    polls = (cold, not_modified, same_body, changed, every)
    worst = max(polls, key=lambda usage: usage.pss_peak_mb)
    return [
        _ratio("cold poll / bare feedparser (CPU)", cold, floor, 1.5),
        _ratio("304 poll / bare aiohttp (CPU)", not_modified, http, 3.0),
        _ratio("same-bytes poll / 304 poll (CPU)", same_body, not_modified, 2.0),
        _ratio("re-fetched (changed items) / 304 poll", changed, not_modified, 3.0),
        _ratio("re-fetched (changed items) / bare lxml", changed, lxml, 5.0),
        Target(
            "re-fetched: every item / changed items",
            # a ratio that must reach 10: its inverse must not exceed 0.1
            changed.cpu_s / every.cpu_s,
            0.1,
            "x",
            f"{changed.cpu_s:.2f} s / {every.cpu_s:.2f} s: "
            f"{every.cpu_s / changed.cpu_s:.1f}x cheaper (target >= 10x)",
        ),
        Target(
            "peak memory of a poll (tree, PSS)",
            worst.pss_peak_mb,
            300,
            "MB",
            f"sum of per-process peaks {worst.tree_peak_mb:.0f} MB (upper bound); "
            f"main process alone {worst.main_peak_mb:.0f} MB",
        ),
    ]


def _ratio(label: str, measured: Usage, floor: Usage, limit: float) -> Target:
    detail = f"{measured.cpu_s:.2f} s / {floor.cpu_s:.2f} s"
    return Target(label, measured.cpu_s / floor.cpu_s, limit, "x", detail)


def _notes(rows: list[Row]) -> list[str]:
    cold, as_called = rows[0].usage, rows[4].usage
    return [
        "CPU = user + system of the measured process and all its descendants (parse "
        "workers included), over the poll only; (main) = the polling process alone; the "
        "feed server runs in a process of its own.",
        f"cold poll / feedparser with parse.py's switches: {cold.cpu_s / as_called.cpu_s:.2f}x "
        "(no target; sanitize_html and resolve_relative_uris off, as parse_feed calls it).",
        "re-fetched: each poll of /rolling/ gets every feed whole (no validators) with a "
        "lastBuildDate of now and one new item; 'every item parsed' is the same poll with "
        "Poller.parse_changed_items off (the whole parse, as before item keys); the rows with "
        "min-max are the median of their runs.",
        "all feeds are on one host (127.0.0.1), so the Fetcher's per-host limit "
        "(FetchPolicy.per_host = 2) holds the poll to 2 fetches at once; bare aiohttp uses "
        f"{CONCURRENCY} connections.",
    ]
