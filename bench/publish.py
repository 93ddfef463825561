"""The publish benchmark of issue 3: regenerating the category feeds, and serving them.

A newsroom of 20 categories with 50 stored entries each (`_newsroom`: real
Vietnamese articles of about 4 KB, parsed and stored as a poll would). Each
scenario (`_publish_scenarios`) runs in a fresh interpreter and is measured by
`_measure.Window`:

* **render_all** (today's full render, the baseline): ``render_all(rss, atom,
  json)`` of each category's 50 entries, read from the store before the window;
* **from fragments**: the same documents through ``Publisher.render_feed`` on a
  fresh copy whose fragment cache a regenerate of every category warmed, after
  one entry was edited: read the cached fragments, render and cache the edited
  entry, assemble (checked afterwards to be render_all's bytes);
* **Publisher.regenerate**: the same 20 categories through the real publish
  path on a fresh copy of the database: read the newest entries, dedupe,
  render (through the fragment cache), hash, gzip and store each document;
  once with no fragment cached yet, once warm after one edit.

Those four run in turns, ``runs`` times each; a row is the median run, with the
least and most CPU of its runs.
* **serving**: ``feedsvc serve`` on a copy of the newsroom (it publishes every
  feed before it listens), loaded by wrk on loopback with a feed reader's
  headers: the static file ``/static/style.css`` (Starlette's StaticFiles in
  the same app, the baseline), a stored feed (answered 200 with its gzip copy)
  and the same feed with its ETag in If-None-Match (answered 304). One server
  per run takes the three loads in turn; their rows' CPU is the server's during
  each load, and the best run of each is the one with most requests/s.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench import _load, _newsroom
from bench._measure import Usage, run_isolated
from bench._report import Report, Row, Target, progress

RENDER = "render_all, 20 x 50 entries x 3 (today)"
WARM_RENDER = "the same from fragments, 1 entry edited"
REGENERATE = "Publisher.regenerate, no fragments yet"
WARM_REGENERATE = "Publisher.regenerate, warm, 1 entry edited"
FEED = "/feeds/xa-hoi.rss"
STATIC = "/static/style.css"
# label, path, conditional: the serving scenarios, baseline first.
_SERVED = (
    ("serve static file (baseline)", STATIC, False),
    ("serve stored feed, gzip (200)", FEED, False),
    ("serve stored feed, If-None-Match (304)", FEED, True),
)


@dataclass(frozen=True, slots=True)
class Plan:
    categories: int
    entries: int
    runs: int  # of each scenario
    seconds: int  # of load per serving run (wrk takes whole seconds)
    warm_seconds: int  # of load on each path before the windows


FULL = Plan(categories=20, entries=50, runs=3, seconds=5, warm_seconds=1)
QUICK = Plan(categories=20, entries=50, runs=1, seconds=2, warm_seconds=0)


@dataclass(frozen=True, slots=True)
class _Served:
    usage: Usage
    load: _load.Load


def run(quick: bool) -> Report:
    """Build and publish the newsroom, then measure rendering, regenerating and serving."""
    plan = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="feedsvc-bench-") as tmp:
        work = Path(tmp)
        progress(f"publish: storing {plan.categories} categories x {plan.entries} entries")
        db = _newsroom.build(work, categories=plan.categories, entries=plan.entries)
        config = str(work / "newsroom.yaml")
        entries = plan.entries
        rows = _alternating(
            plan.runs,
            {
                RENDER: lambda n: _isolated("render_scenario", config=config, entries=entries),
                WARM_RENDER: lambda n: _isolated(
                    "warm_render_scenario",
                    config=_fresh_copy(work, db, plan, f"warm-{n}"),
                    entries=entries,
                ),
                REGENERATE: lambda n: _isolated(
                    "regenerate_scenario", config=_fresh_copy(work, db, plan, f"cold-{n}")
                ),
                WARM_REGENERATE: lambda n: _isolated(
                    "regenerate_scenario",
                    config=_fresh_copy(work, db, plan, f"regenerate-{n}"),
                    entries=entries,
                    warm=True,
                ),
            },
        )
        served: list[_Served] = []
        notes = []
        if _load.available():
            served = _serve(plan, work, db)
            rows += [
                Row(label, s.usage, plan.runs)
                for (label, _, _), s in zip(_SERVED, served, strict=True)
            ]
        else:
            notes.append("serving not measured: wrk is not installed (apt-get install wrk)")
    title = f"publish: {plan.categories} categories x {plan.entries} entries, rss + atom + json"
    return Report(title, rows, _targets(rows, served), _notes(plan, rows, served) + notes)


def _isolated(function: str, **params: Any) -> Usage:
    return run_isolated(f"bench._publish_scenarios:{function}", params)


def _alternating(runs: int, scenarios: dict[str, Callable[[int], Usage]]) -> list[Row]:
    """The median run of each scenario, run in turns so that drift on the machine
    hits them all alike."""
    usages: dict[str, list[Usage]] = {label: [] for label in scenarios}
    for n in range(runs):
        for label, measure in scenarios.items():
            progress(f"publish: {label} ({n + 1}/{runs})")
            usages[label].append(measure(n))
    return [Row.of_runs(label, found) for label, found in usages.items()]


def _fresh_copy(work: Path, db: Path, plan: Plan, name: str) -> str:
    """A config for a fresh copy of the unpublished newsroom: every document will be new."""
    copy = _newsroom.copy(db, work / f"{name}.db")
    config = work / f"{name}.yaml"
    _newsroom.write_config(config, copy, categories=plan.categories)
    return str(config)


def _serve(plan: Plan, work: Path, db: Path) -> list[_Served]:
    """The best run (most requests/s) of each serving scenario, in `_SERVED` order.

    Each run is one fresh ``feedsvc serve`` (which publishes every feed before
    it listens) taking the three loads in turn, each run starting one further
    along `_SERVED`, so that no load always comes first.
    """
    served = _newsroom.copy(db, work / "served.db")
    runs: list[list[_Served]] = [[] for _ in _SERVED]
    for n in range(plan.runs):
        order = [(n + k) % len(_SERVED) for k in range(len(_SERVED))]
        progress(f"publish: serving, {plan.seconds} s of load per path ({n + 1}/{plan.runs})")
        out = work / f"load-{n}.json"
        whole = _isolated(
            "serve_scenario",
            work=str(work),
            db=str(served),
            categories=plan.categories,
            loads=[{"path": _SERVED[i][1], "conditional": _SERVED[i][2]} for i in order],
            seconds=plan.seconds,
            warm_seconds=plan.warm_seconds,
            out=str(out),
        )
        for index, figures in zip(order, json.loads(out.read_text()), strict=True):
            usage = replace(Usage(**figures["usage"]), pss_peak_mb=whole.pss_peak_mb)
            runs[index].append(_Served(usage, _load.Load(**figures["load"])))
    return [max(found, key=lambda s: s.load.per_second) for found in runs]


def _targets(rows: list[Row], served: list[_Served]) -> list[Target]:
    render, warm = rows[0].usage, rows[1].usage
    worst = max((row.usage for row in rows[:4]), key=lambda usage: usage.pss_peak_mb)
    targets = [
        Target(
            "render, warm fragments, 1 entry edited (CPU)",
            warm.cpu_s * 1000,
            250,
            "ms",
            "60 documents of 50 entries; median run",
        ),
        Target(
            "  the same / today's full render_all (CPU)",
            warm.cpu_s / render.cpu_s,
            0.3,
            "x",
            f"{warm.cpu_s * 1000:.0f} ms / {render.cpu_s * 1000:.0f} ms, medians",
        ),
        Target(
            "peak memory of rendering (tree, PSS)",
            worst.pss_peak_mb,
            300,
            "MB",
            "the largest of the four render and regenerate scenarios",
        ),
    ]
    if served:
        static, feed, not_modified = (s.load.per_second for s in served)
        targets += [
            Target(
                "static file / stored feed (time/request)",
                static / feed,
                2.0,
                "x",
                f"feed {feed:,.0f} req/s = {feed / static:.2f}x static {static:,.0f} req/s "
                "(>= 0.5x asked)",
            ),
            Target(
                "stored feed 200 / 304 (time/request)",
                feed / not_modified,
                1.0,
                "x",
                f"304 {not_modified:,.0f} req/s vs 200 {feed:,.0f} req/s (304s faster asked)",
            ),
        ]
    return targets


def _notes(plan: Plan, rows: list[Row], served: list[_Served]) -> list[str]:
    render, warm, cold, rewarm = (row.usage for row in rows[:4])
    notes = [
        f"from fragments: {warm.cpu_s / render.cpu_s:.2f}x today's render_all. Each category "
        "reads its entries' cached fragments (one SELECT), renders the edited entry once "
        "(feedgen, then lxml serializes it) and caches it, and assembles each document from "
        "feedgen's head (the feed without entries) and the fragments; every document is "
        "checked afterwards to be the bytes render_all gives. The cache was warmed by a "
        "regenerate of every category before the window.",
        f"Publisher.regenerate with no fragments yet: {cold.cpu_s / render.cpu_s:.2f}x "
        "render_all (it also renders each entry into the fragments it then caches, reads the "
        "2 x feeds.max_items = 100 newest entries per category and dedupes them, and per "
        "document hashes the body, gzips it (level 6) and writes it); warm, after one edit: "
        f"{rewarm.cpu_s / render.cpu_s:.2f}x render_all, the edited category's three "
        "documents changed. No target for either. Scenarios run in turns; each renders "
        "before its window (first use of lxml and feedgen in a process).",
    ]
    if not served:
        return notes
    for (label, path, _), s in zip(_SERVED, served, strict=True):
        load, cpu_us = s.load, s.usage.cpu_s / s.load.requests * 1e6
        notes.append(
            f"{label}: {load.per_second:,.0f} req/s, latency p50 {load.p50_ms:.2f} ms, "
            f"p99 {load.p99_ms:.2f} ms; {load.bytes_per_request:,.0f} bytes per answer "
            f"({path}); server CPU {cpu_us:.0f} us per request"
        )
    server_cores, wrk_cores = _load.cores()
    pinning = (
        f"wrk pinned to core {wrk_cores[-1]} and the server to core(s) {server_cores[-1]} (taskset)"
        if wrk_cores
        else "no pinning (one core, or no taskset)"
    )
    warm = f"after {plan.warm_seconds} s of warm-up per path" if plan.warm_seconds else "no warm-up"
    notes.append(
        f"load: wrk -t{_load.THREADS} -c{_load.CONNECTIONS} -d{plan.seconds}s on "
        f"127.0.0.1, {warm}, headers Accept-Encoding: gzip "
        f"(+ If-None-Match: the feed's ETag for 304s); {os.cpu_count()} cores: {pinning}; "
        "feedsvc serve is one uvicorn process. Serving rows' CPU is the server's alone "
        "(wrk exits inside the window, so it is not counted); best run by req/s."
    )
    return notes
