"""The service benchmark of issue 5: `feedsvc run` in its steady state, beside a bare loop.

2,000 small RSS feeds (10 entries, about 16 KB each) are served by
tests/feedserver.py in a process of its own, with ETags and 304s, in two
variants measured one after the other in the same run: on ten loopback
addresses (127.0.0.1 to 127.0.0.10, the feeds assigned round robin), where the
service's per-host limit (2 at once) allows the 20 fetches the bare loop makes,
and all on one address, as a newsroom takes dozens of feeds from each big site,
where the limit holds the service to 2 at once and the bare loop still makes 20
(issue 15: the politeness limit must not cost CPU). In each variant two subjects
run side by side in the same run, each a process of its own
(`_service_scenarios`):

* **the service**, ``feedsvc run`` as an operator starts it, with every feed a
  source and ``fetch.interval: 5m``;
* **a bare aiohttp loop** making the same conditional requests on the same
  schedule: each URL every 5 minutes with the ETag of its first answer, 20 at
  once, claimed by a 15-second tick like the service's.

Both first poll every feed once (the cold poll: 200s, the service parses and
stores every entry), then settle into the steady state, where every answer is
304. Only the steady state is measured.

**The window is one interval long, centred on the first steady wave.** A
source's next poll is due one interval after its last, so the cold poll, which
takes the service about a minute, puts all 2,000 next polls within that minute,
five minutes later; the service keeps them together ever after. The steady
state is therefore one wave of 2,000 304s per interval, and idle ticks in
between: a window shorter than an interval holds the wave or not depending on
where it starts (minutes 1 to 5 after the cold poll hold no poll at all), and
counting the wave in a 4-minute window would inflate the CPU% by 5/4. A window
of exactly one interval, opening after the cold poll and before the first
source falls due, holds exactly one poll of every source whatever the wave's
shape, so its CPU% is the true average over a cycle: the wave and the idle
ticks. It is placed so that the wave is in its middle: the first and the last
minute are then both idle, one before and one after a full steady cycle, and
their RSS difference is what a cycle leaves behind. The bare loop is started
as the service's cold poll begins, so its own wave falls inside the same
window. The full run takes about 9 minutes: setup, the cold poll, half an
interval, the window.

What is counted, sampled from /proc by this process once a second (so the
sampling costs the subjects nothing): CPU = user + system of each subject's
whole process tree (the service's fork server and parse workers included)
between the window's first and last sample, which fails if a process of the
tree exits inside the window, as `_measure.Window` does; RSS of the subject's
main process (start, middle, end, max, mean of the first and last fifth of the
window, least-squares slope); the largest summed RSS and PSS of its tree. Since the
first and the last fifth are idle, their CPU% is the subject's idle cost, and
the rest of the window's CPU is what its wave cost: both are printed, the
wave's per poll too.

"Memory flat" is judged on that one steady cycle: the RSS of the last fifth
may exceed the first fifth's by at most ``MEMORY_LIMIT_MB``. One cycle cannot
tell a small leak from a one-time growth (the first steady wave added about
2 MB in the runs made while writing this), so the limit sits above that and
catches a leak of 2.5 KB or more per poll (5 MB per 2,000 polls); a smaller
one needs a soak run of many cycles.

Every figure is checked: the cold poll stored every feed (service) or got every
feed (bare loop), and the window holds exactly one poll of every source by
each subject, every one a 304. ``--quick`` uses 200 sources and a 1-minute
interval and window (a smoke check of about 2 minutes; the 15-second tick is a
quarter of that interval, so its figures are not the steady state's).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

from bench._corpus import write_feeds
from bench._measure import BenchError, Usage, descendants, read_proc, stat_cpu_s, stat_fields
from bench._report import Report, Row, Target, progress
from bench._server import feed_servers
from bench._service_scenarios import (
    CONCURRENCY,
    TICK_S,
    Subject,
    event_time,
    free_port,
    service_config,
    start_bare_loop,
    start_service,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Plan:
    sources: int
    entries: int
    interval_s: int  # fetch.interval, and the length of the window


FULL = Plan(sources=2000, entries=10, interval_s=300)
QUICK = Plan(sources=200, entries=10, interval_s=60)
ITEM_BYTES = 1500  # small feeds: about 16 KB with 10 entries, so the cold poll is short
# The loopback addresses the feeds are spread over, one variant each, in turn: ten (20
# fetches at once, 2 per host) and one, a newsroom's sources all on one big site, where
# the service's per-host limit holds it to 2 fetches at once and the bare loop makes 20.
VARIANTS = (10, 1)
CPU_LIMIT = 2.0  # the service's CPU over the bare loop's (issue 5)
MEMORY_LIMIT_MB = 5.0  # "memory flat": last fifth over first fifth (see the docstring)
PSS_LIMIT_MB = 300.0  # peak memory of the service's tree (issue 15)
SAMPLE_S = 1.0
PARTS = 5  # the window in fifths: a minute each in the full run
_START_TIMEOUT_S = 120
_EARLY_S = 2.0  # a poll's due time is set before its fetch; the log line comes after it
_SETTLE_S = 15.0  # after the last due source's tick: the time its batch takes, with room
_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


def run(quick: bool) -> Report:
    """Serve the feeds, run both subjects, measure one steady interval; report it."""
    plan = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="feedsvc-bench-") as tmp:
        work = Path(tmp)
        progress(f"service: writing {plan.sources} feeds of {plan.entries} entries")
        names = write_feeds(
            work / "feeds", feeds=plan.sources, entries=plan.entries, item_bytes=ITEM_BYTES
        )
        size_kb = sum((work / "feeds" / n).stat().st_size for n in names) / len(names) / 1024
        outcomes = {}
        for hosts in VARIANTS:
            with feed_servers(work / "feeds", hosts=hosts) as base_urls:
                # Round robin over the hosts.
                urls = [f"{base_urls[n % hosts]}/feeds/{name}" for n, name in enumerate(names)]
                outcomes[hosts] = _run(plan, work / f"hosts-{hosts}", urls, hosts)
    return _report(plan, size_kb, outcomes)


# -- the run -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Proc:
    cpu_s: float
    rss_mb: float
    pss_mb: float


@dataclass(frozen=True, slots=True)
class _Sample:
    """One look at a subject's process tree (``procs[root]`` is the subject itself)."""

    time: float  # wall clock, as the logs have it
    clock: float  # perf_counter, for durations
    root: int
    procs: dict[int, _Proc]

    @property
    def main_rss_mb(self) -> float:
        main = self.procs.get(self.root)
        return main.rss_mb if main else 0.0

    @property
    def cpu_s(self) -> float:
        return sum(proc.cpu_s for proc in self.procs.values())


@dataclass(frozen=True, slots=True)
class _Outcome:
    service: list[_Sample]
    bare: list[_Sample]
    cold_s: float  # the service's cold poll, first to last poll
    window: tuple[float, float]
    wave_s: float  # the service's steady wave, first to last poll
    service_events: Counter[str]  # other log events inside the window
    service_exit: int | None
    service_stop_s: float


def _run(plan: Plan, work: Path, feed_urls: list[str], hosts: int) -> _Outcome:
    work.mkdir()
    config = work / "config.yaml"
    config.write_text(
        service_config(
            work=work,
            urls=feed_urls,
            interval_s=plan.interval_s,
            port=free_port(),
        ),
        encoding="utf-8",
    )
    urls = work / "urls.txt"
    urls.write_text("".join(f"{url}\n" for url in feed_urls), encoding="utf-8")
    progress(f"service: starting feedsvc run; cold poll of {plan.sources} sources, {hosts} host(s)")
    with start_service(config, work / "service.log") as service:
        _wait(lambda: _polls(service), [service], _START_TIMEOUT_S, "the service's first poll")
        with start_bare_loop(urls, plan.interval_s, work / "bare.log") as bare:
            subjects = [service, bare]

            def cold_poll() -> list[dict[str, Any]]:
                polls = _polls(service)
                return polls[: plan.sources] if len(polls) >= plan.sources else []

            cold = _wait(cold_poll, subjects, plan.interval_s, "the service's cold poll")
            cold_ticks = _wait(lambda: bare.lines.read(), subjects, 60, "the bare loop's cold pass")
            _check_cold(plan, cold, cold_ticks[0])
            cold_times = [event_time(poll) for poll in cold]
            window = _window(plan, cold_times, cold_ticks[0])
            progress(
                f"service: cold poll took {max(cold_times) - min(cold_times):.0f} s; "
                f"measuring {plan.interval_s} s from {window[0] - time.time():.0f} s from now"
            )
            service_samples, bare_samples = _measure(subjects, window)
            steady = _check_service_window(plan, _polls(service)[plan.sources :], window)
            _check_bare_window(plan, bare.lines.read()[1:], window)
        service.stop()
        others = Counter(
            str(event.get("event"))
            for event in service.lines.read()
            if event.get("event") != "polled" and window[0] <= event_time(event) <= window[1]
        )
    return _Outcome(
        service=service_samples,
        bare=bare_samples,
        cold_s=max(cold_times) - min(cold_times),
        window=window,
        wave_s=max(steady) - min(steady),
        service_events=others,
        service_exit=service.exit_code,
        service_stop_s=service.stop_s,
    )


def _polls(service: Subject) -> list[dict[str, Any]]:
    return [event for event in service.lines.read() if event.get("event") == "polled"]


def _wait(check: Callable[[], T], subjects: list[Subject], timeout: float, what: str) -> T:
    """The first true value of ``check()``, polled every 0.5 s while the subjects live."""
    deadline = time.monotonic() + timeout
    while True:
        for subject in subjects:
            subject.check_alive()
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.5)


def _check_cold(plan: Plan, polls: list[dict[str, Any]], tick: dict[str, Any]) -> None:
    statuses = Counter(poll["status"] for poll in polls)
    if statuses != {"updated": plan.sources} or len({p["source"] for p in polls}) != plan.sources:
        error = next((poll["error"] for poll in polls if "error" in poll), None)
        raise BenchError(f"cold poll: expected every source updated, got {dict(statuses)}; {error}")
    if tick["statuses"] != {"200": plan.sources}:
        raise BenchError(f"bare loop's cold pass: expected all 200, got {tick['statuses']}")


def _window(plan: Plan, cold_times: list[float], bare_tick: dict[str, Any]) -> tuple[float, float]:
    """One interval holding exactly one steady poll of every source, the wave in its middle.

    Each source falls due one interval after its cold poll and is claimed by the
    next tick; the wave thus spans [first due, last due + tick + settling].
    """
    first = min(min(cold_times), bare_tick["start"]) + plan.interval_s - _EARLY_S
    last = max(max(cold_times), bare_tick["end"]) + plan.interval_s + TICK_S + _SETTLE_S
    start = max((first + last - plan.interval_s) / 2, time.time() + SAMPLE_S)
    if start > first or start + plan.interval_s < last:
        raise BenchError(
            f"the cold poll took {max(cold_times) - min(cold_times):.0f} s: no window of one "
            f"{plan.interval_s} s interval after it holds exactly one steady wave"
        )
    return start, start + plan.interval_s


def _measure(subjects: list[Subject], window: tuple[float, float]) -> list[list[_Sample]]:
    """Sample every subject's tree once a second from the window's start to its end."""
    start, end = window
    while (remaining := start - time.time()) > 0:
        for subject in subjects:
            subject.check_alive()
        time.sleep(min(remaining, 5.0))
    samples: list[list[_Sample]] = [[] for _ in subjects]
    due = start
    while True:
        for subject, series in zip(subjects, samples, strict=True):
            subject.check_alive()
            series.append(_snapshot(subject.pid))
        if due >= end:
            return samples
        due = min(due + SAMPLE_S, end)
        time.sleep(max(0.0, due - time.time()))


def _snapshot(root: int) -> _Sample:
    procs = {}
    for pid in (root, *descendants(root)):
        proc = _proc(pid)
        if proc is not None:
            procs[pid] = proc
    return _Sample(time.time(), time.perf_counter(), root, procs)


def _proc(pid: int) -> _Proc | None:
    """CPU time, RSS and PSS of ``pid`` from /proc, or None if it has gone."""
    stat, rollup = read_proc(f"/proc/{pid}/stat"), read_proc(f"/proc/{pid}/smaps_rollup")
    if not stat:
        return None
    pss_kb = next((int(line.split()[1]) for line in rollup.splitlines() if line[:4] == "Pss:"), 0)
    return _Proc(
        cpu_s=stat_cpu_s(stat),
        rss_mb=int(stat_fields(stat)[21]) * _PAGE_MB,
        pss_mb=pss_kb / 1024,
    )


def _check_service_window(
    plan: Plan, polls: list[dict[str, Any]], window: tuple[float, float]
) -> list[float]:
    """Exactly one poll of every source inside the window, each a 304; their times."""
    inside = [poll for poll in polls if window[0] <= event_time(poll) <= window[1]]
    per_source = Counter(poll["source"] for poll in inside)
    statuses = Counter(poll["status"] for poll in inside)
    if len(per_source) != plan.sources or set(per_source.values()) != {1}:
        twice = sum(1 for count in per_source.values() if count > 1)
        raise BenchError(
            f"the window holds polls of {len(per_source)} of {plan.sources} sources "
            f"({twice} polled more than once): not one steady cycle"
        )
    if statuses != {"not_modified": plan.sources}:
        raise BenchError(f"steady state: expected every poll 304, got {dict(statuses)}")
    return [event_time(poll) for poll in inside]


def _check_bare_window(
    plan: Plan, ticks: list[dict[str, Any]], window: tuple[float, float]
) -> None:
    """The bare loop's steady ticks: all inside the window, every source once, all 304."""
    start, end = window
    overlapping = [t for t in ticks if t["start"] < end and t["end"] > start]
    if any(t["start"] < start or t["end"] > end for t in overlapping):
        raise BenchError("a tick of the bare loop straddles the window's edge")
    statuses: Counter[str] = Counter()
    for tick in overlapping:
        statuses.update(tick["statuses"])
    if statuses != {"304": plan.sources}:
        raise BenchError(f"bare loop in the window: expected {plan.sources} 304s, got {statuses}")


# -- the report --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Memory:
    """The main process's RSS over the window (MB)."""

    start: float
    middle: float
    end: float
    peak: float
    first: float  # mean of the first fifth of the window
    last: float  # mean of the last fifth
    slope: float  # least squares, MB per minute

    @property
    def growth(self) -> float:
        return self.last - self.first

    def describe(self) -> str:
        return (
            f"RSS start {self.start:.1f}, middle {self.middle:.1f}, end {self.end:.1f}, "
            f"max {self.peak:.1f} MB; first fifth {self.first:.1f}, last fifth {self.last:.1f} "
            f"MB ({self.growth:+.2f}); slope {self.slope:+.3f} MB/min"
        )


def _usage(samples: list[_Sample]) -> Usage:
    first, last = samples[0], samples[-1]
    gone = set(first.procs) - set(last.procs)
    if gone:
        raise BenchError(f"processes {sorted(gone)} exited inside the window: CPU lost")
    started = {pid: proc.cpu_s for pid, proc in first.procs.items()}
    return Usage(
        cpu_s=sum(proc.cpu_s - started.get(pid, 0.0) for pid, proc in last.procs.items()),
        main_cpu_s=last.procs[last.root].cpu_s - first.procs[first.root].cpu_s,
        wall_s=last.clock - first.clock,
        main_peak_mb=max(sample.main_rss_mb for sample in samples),
        tree_peak_mb=max(sum(p.rss_mb for p in sample.procs.values()) for sample in samples),
        processes=len(last.procs),
        pss_peak_mb=max(sum(p.pss_mb for p in sample.procs.values()) for sample in samples),
    )


def _memory(samples: list[_Sample]) -> _Memory:
    times = [sample.time - samples[0].time for sample in samples]
    rss = [sample.main_rss_mb for sample in samples]
    part = times[-1] / PARTS
    first = [mb for t, mb in zip(times, rss, strict=True) if t <= part]
    last = [mb for t, mb in zip(times, rss, strict=True) if t >= times[-1] - part]
    mean_t, mean_rss = sum(times) / len(times), sum(rss) / len(rss)
    covariance = sum((t - mean_t) * (mb - mean_rss) for t, mb in zip(times, rss, strict=True))
    variance = sum((t - mean_t) ** 2 for t in times)
    return _Memory(
        start=rss[0],
        middle=rss[len(rss) // 2],
        end=rss[-1],
        peak=max(rss),
        first=sum(first) / len(first),
        last=sum(last) / len(last),
        slope=covariance / variance * 60 if variance else 0.0,
    )


def _cpu_by_part(samples: list[_Sample]) -> list[float]:
    """CPU% of one core in each fifth of the window: where the wave is."""
    start, end = samples[0].clock, samples[-1].clock
    edges = [start + (end - start) * n / PARTS for n in range(PARTS + 1)]
    percents = []
    for low, high in pairwise(edges):
        a = min(samples, key=lambda s: abs(s.clock - low))
        b = min(samples, key=lambda s: abs(s.clock - high))
        percents.append(100 * (b.cpu_s - a.cpu_s) / (b.clock - a.clock))
    return percents


def _split(usage: Usage, samples: list[_Sample], polls: int) -> str:
    """The window's CPU as idle (the rate of the first and last fifth) plus the wave."""
    parts = _cpu_by_part(samples)
    idle_percent = (parts[0] + parts[-1]) / 2
    idle_s = idle_percent / 100 * usage.wall_s
    wave_s = usage.cpu_s - idle_s
    return (
        f"idle {idle_percent:.2f}% of a core ({idle_s:.2f} s per interval), the wave "
        f"{wave_s:.2f} s ({1000 * wave_s / polls:.2f} ms per poll); by fifth "
        + " ".join(f"{p:.1f}" for p in parts)
        + " %"
    )


def _report(plan: Plan, size_kb: float, outcomes: dict[int, _Outcome]) -> Report:
    rows: list[Row] = []
    targets: list[Target] = []
    notes: list[str] = [
        f"{plan.sources} sources, {plan.entries} entries and {size_kb:.0f} KB each, "
        f"fetch.interval {plan.interval_s / 60:g} min; each variant (the feeds on "
        + " and on ".join(
            f"{hosts} loopback address{'es' if hosts > 1 else ''}" for hosts in outcomes
        )
        + ") runs its own service and bare loop, one after the other in this run.",
        "why one whole interval: the cold poll puts every source's next poll within the "
        "same minute, so the steady state is one wave per interval and idle ticks between; a "
        "window of one interval holds exactly one wave wherever it starts after the cold poll, "
        "and its CPU% is the cycle's average (a shorter window either misses the wave or "
        "overstates the CPU%). One window per variant: not a median of repeats.",
        f"memory flat is judged on one steady cycle: the first and last fifth are both idle, "
        f"before and after the wave; the limit ({MEMORY_LIMIT_MB:g} MB) is above the first "
        f"steady wave's one-time growth (about 2 MB) and catches a leak of "
        f"{MEMORY_LIMIT_MB * 1024 / plan.sources:.1f} KB or more per poll; a smaller one needs "
        "a soak run of many cycles.",
        f"the service logs every poll (INFO, JSON, to a file), claims due sources every "
        f"{TICK_S} s, checks config.yaml every 2 s and due deliveries every 30 s, with uvicorn "
        f"idle; its per-host limit is 2 fetches at once, so on ten hosts it makes "
        f"{CONCURRENCY} at once as the bare loop does, and on one host 2 where the bare loop "
        f"(no per-host limit) makes {CONCURRENCY}.",
    ]
    for hosts, outcome in outcomes.items():
        variant = _variant(plan, hosts, outcome)
        rows += variant.rows
        targets += variant.targets
        notes += variant.notes
    title = (
        f"service: feedsvc run, {plan.sources} sources every {plan.interval_s / 60:g} min, "
        f"steady state (304s), beside a bare aiohttp loop, on "
        + " and on ".join(f"{hosts} host{'s' if hosts > 1 else ''}" for hosts in outcomes)
    )
    return Report(title, rows, targets, notes)


def _variant(plan: Plan, hosts: int, outcome: _Outcome) -> Report:
    """The rows, targets and notes of one variant (the feeds on ``hosts`` addresses)."""
    service, bare = _usage(outcome.service), _usage(outcome.bare)
    memory, bare_memory = _memory(outcome.service), _memory(outcome.bare)
    minutes = plan.interval_s / 60
    on = f"{hosts} host{'s' if hosts > 1 else ''}"

    def percent(usage: Usage) -> str:
        return f"{100 * usage.cpu_s / usage.wall_s:.2f}%"

    rows = [
        Row(f"feedsvc run, one {minutes:g}-min interval, {on}", service, 1),
        Row(f"bare aiohttp loop, same requests, {on}", bare, 1),
    ]
    targets = [
        Target(
            f"service / bare loop (CPU), {on}",
            service.cpu_s / bare.cpu_s,
            CPU_LIMIT,
            "x",
            f"{service.cpu_s:.2f} s / {bare.cpu_s:.2f} s: {percent(service)} / {percent(bare)} "
            "of one core",
        ),
        Target(
            f"service memory growth (RSS), {on}",
            memory.growth,
            MEMORY_LIMIT_MB,
            "MB",
            f"{memory.growth:+.2f} MB; slope {memory.slope:+.3f} MB/min",
        ),
        Target(
            f"service peak (tree, PSS), {on}",
            service.pss_peak_mb,
            PSS_LIMIT_MB,
            "MB",
            "sampled once a second inside the window",
        ),
    ]
    exit_note = (
        f"exited {outcome.service_exit} {outcome.service_stop_s:.1f} s after SIGTERM"
        if outcome.service_exit is not None
        else "did not exit"
    )
    others = ", ".join(f"{name} x{count}" for name, count in outcome.service_events.items())
    notes = [
        f"{on}: the service's cold poll took {outcome.cold_s:.0f} s (not measured); the window "
        f"held exactly one poll of every source by each subject, all 304; the service's wave "
        f"lasted {outcome.wave_s:.1f} s (ticks every {TICK_S} s).",
        f"{on}: CPU = user + system of each subject's process tree (the service's: "
        f"{service.processes} processes, itself, the parse pool's fork server and workers, "
        "multiprocessing's resource tracker), sampled from /proc once a second by the "
        "benchmark; MB columns: largest sampled RSS (main, tree) and PSS (tree) inside the "
        "window, not VmHWM (the cold poll set that).",
        f"{on}: service CPU: {_split(service, outcome.service, plan.sources)}.",
        f"{on}: bare loop CPU: {_split(bare, outcome.bare, plan.sources)}.",
        f"{on}: service {memory.describe()}.",
        f"{on}: bare loop {bare_memory.describe()}.",
        f"{on}: other service events in the window: {others or 'none'}; the service {exit_note}.",
    ]
    return Report(on, rows, targets, notes)
