"""The poll-command benchmark of issue 15: what ``feedsvc poll`` costs per unchanged source.

2,000 small RSS feeds (10 entries, about 16 KB each, as in `bench.service`) are
served by tests/feedserver.py in a process of its own on ten loopback
addresses, with ETags and 304s. Two SQLite databases know the first 200 and all
2,000 of them as sources; each is primed by one ``feedsvc poll`` (every answer
200, every entry stored: not measured), so that every later poll is all 304s.

Measured from outside (`_poll_scenarios`: the whole process tree of one program
run, start-up included, by rusage of everything it ran), alternating, ``runs``
times each:

* ``feedsvc poll`` over 200 and over 2,000 sources, its output a terminal (the
  progress bar drawn) and piped;
* the bare loop: one aiohttp session making the same conditional GETs (the
  validators a HEAD of each URL gave), 20 at once, over 200 and 2,000 URLs.

The figure is the marginal CPU per source: (2,000-source run - 200-source run)
/ 1,800, taken per pair of runs made in the same turn, so that start-up (imports,
migrations, the parse pool) cancels out; a row shows the median pair, with the
least and most any pair gave.
"""

from __future__ import annotations

import json
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._corpus import write_feeds
from bench._measure import BenchError, Usage, run_isolated
from bench._report import Report, Row, Target, progress
from bench._server import feed_servers
from bench._service_scenarios import free_port, service_config

ITEM_BYTES = 1500  # as bench.service: about 16 KB a feed
HOSTS = 10
LIMIT = 3.0  # the command's marginal CPU per source over the bare loop's (issue 15)
_MODES = ("terminal", "piped", "bare")


@dataclass(frozen=True, slots=True)
class Plan:
    small: int
    large: int
    entries: int
    runs: int


FULL = Plan(small=200, large=2000, entries=10, runs=3)
QUICK = Plan(small=50, large=300, entries=10, runs=1)


@dataclass(frozen=True, slots=True)
class _Marginal:
    """Per-source CPU of one mode: the median pair, and the least and most of any pair."""

    mode: str
    median_ms: float
    low_ms: float
    high_ms: float


def run(quick: bool) -> Report:
    """Serve the feeds, prime both databases, then measure every mode at both sizes."""
    plan = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="feedsvc-bench-") as tmp:
        work = Path(tmp)
        progress(f"poll: writing {plan.large} feeds of {plan.entries} entries")
        names = write_feeds(
            work / "feeds", feeds=plan.large, entries=plan.entries, item_bytes=ITEM_BYTES
        )
        with feed_servers(work / "feeds", hosts=HOSTS) as base_urls:
            urls = [f"{base_urls[n % HOSTS]}/feeds/{name}" for n, name in enumerate(names)]
            setups = {size: _prime(work, urls[:size]) for size in (plan.small, plan.large)}
            usages = _measure(plan, work, setups)
    rows = [
        Row.of_runs(f"{_LABELS[mode]}, {size} sources", usages[(mode, size)])
        for mode in _MODES
        for size in (plan.small, plan.large)
    ]
    marginals = {mode: _marginal(plan, usages, mode) for mode in _MODES}
    title = f"poll: feedsvc poll, {plan.small} and {plan.large} unchanged (304) sources"
    return Report(title, rows, _targets(marginals, rows), _notes(plan, marginals))


_LABELS = {
    "terminal": "feedsvc poll, in a terminal",
    "piped": "feedsvc poll, output piped",
    "bare": "bare aiohttp loop",
}


def _prime(work: Path, urls: list[str]) -> dict[str, str]:
    """A config and database knowing ``urls``, polled once; the validators of each URL."""
    folder = work / f"sources-{len(urls)}"
    folder.mkdir()
    config = folder / "config.yaml"
    config.write_text(
        service_config(work=folder, urls=urls, interval_s=300, port=free_port()),
        encoding="utf-8",
    )
    progress(f"poll: priming {len(urls)} sources (a cold poll, not measured)")
    run_isolated(
        "bench._poll_scenarios:prime_scenario",
        {"config": str(config), "sources": len(urls), "log": str(folder / "prime.log")},
    )
    validators = folder / "validators.json"
    validators.write_text(json.dumps({url: _validators(url) for url in urls}), encoding="utf-8")
    return {"config": str(config), "validators": str(validators), "folder": str(folder)}


def _validators(url: str) -> dict[str, str]:
    request = urllib.request.Request(url, method="HEAD")
    with urllib.request.urlopen(request, timeout=10) as response:
        return {
            "If-None-Match": response.headers["ETag"],
            "If-Modified-Since": response.headers["Last-Modified"],
        }


def _measure(
    plan: Plan, work: Path, setups: dict[int, dict[str, str]]
) -> dict[tuple[str, int], list[Usage]]:
    usages: dict[tuple[str, int], list[Usage]] = {}
    for n in range(plan.runs):
        for mode in _MODES:
            for size in (plan.small, plan.large):
                progress(f"poll: {_LABELS[mode]}, {size} sources ({n + 1}/{plan.runs})")
                setup = setups[size]
                params: dict[str, Any] = {
                    "sources": size,
                    "log": f"{setup['folder']}/{mode}-{n}.log",
                }
                if mode == "bare":
                    function = "bare_scenario"
                    params["validators"] = setup["validators"]
                else:
                    function = "command_scenario"
                    params |= {"config": setup["config"], "terminal": mode == "terminal"}
                usage = run_isolated(f"bench._poll_scenarios:{function}", params)
                usages.setdefault((mode, size), []).append(usage)
    return usages


def _marginal(plan: Plan, usages: dict[tuple[str, int], list[Usage]], mode: str) -> _Marginal:
    extra = plan.large - plan.small
    pairs = sorted(
        (large.cpu_s - small.cpu_s) / extra * 1000
        for small, large in zip(usages[(mode, plan.small)], usages[(mode, plan.large)], strict=True)
    )
    if pairs[0] <= 0:
        raise BenchError(f"{mode}: the larger poll cost no more than the smaller ({pairs})")
    return _Marginal(mode, pairs[(len(pairs) - 1) // 2], pairs[0], pairs[-1])


def _targets(marginals: dict[str, _Marginal], rows: list[Row]) -> list[Target]:
    bare = marginals["bare"]
    targets = [
        Target(
            f"feedsvc poll ({mode}) / bare, per source",
            marginals[mode].median_ms / bare.median_ms,
            LIMIT,
            "x",
            f"{marginals[mode].median_ms:.3f} ms / {bare.median_ms:.3f} ms marginal CPU, medians",
        )
        for mode in ("terminal", "piped")
    ]
    worst = max(rows, key=lambda row: row.usage.pss_peak_mb)
    targets.append(
        Target(
            "peak memory of a poll command (tree, PSS)",
            worst.usage.pss_peak_mb,
            300,
            "MB",
            worst.label,
        )
    )
    return targets


def _notes(plan: Plan, marginals: dict[str, _Marginal]) -> list[str]:
    lines = [
        f"{_LABELS[m.mode]}: {m.median_ms:.3f} ms CPU per source (median of {plan.runs} pairs; "
        f"{m.low_ms:.3f} to {m.high_ms:.3f})"
        for m in marginals.values()
    ]
    return [
        *lines,
        "CPU = user + system of everything the program ran (the command, its forkserver and "
        "parse workers), from rusage after reaping them all (the measuring process is a child "
        "subreaper); the feed server is a process of its own. The sources are spread over "
        f"{HOSTS} loopback addresses, as in the service benchmark, so the per-host limit of 2 "
        "fetches at once never holds the command back. In a terminal the command draws its "
        "progress bar (a pty); piped, it draws none. Every run checks every answer was a 304 "
        "(the command's summary: N polled, 0 new, 0 failed).",
    ]
