"""The serve benchmark of issue 15: a stored category feed, 200 and 304, beside a bare app.

Two servers, each a process of its own pinned to the same core (``taskset``),
are loaded in turn by wrk on the other core over loopback, with a feed reader's
headers (``Accept-Encoding: gzip``, plus the feed's ETag in If-None-Match for
the 304s):

* **feedsvc serve** on the newsroom (20 categories x 50 stored entries, `_newsroom`),
  serving ``/feeds/xa-hoi.rss`` as a reader gets it;
* **the bare app** (`_bare_asgi`): uvicorn + httptools, nothing else, returning
  the bytes and headers feedsvc answered for that feed (captured before the
  runs) from memory.

Each run loads each server with each case (200, then 304; which server goes
first alternates between runs) for ``seconds`` after a short warm-up. The
figures per (server, case): requests per second (wrk), and the server's CPU per
request (user + system of its process tree from /proc before and after the
load, over wrk's request count; wrk's own CPU is not counted). Each is the
median of the runs, with min and max. The targets (issue 15): feedsvc at least
half the bare app's requests per second and at most twice its CPU per request,
for the 200 and for the 304.

On a machine shared with other work the requests per second move with what
else runs on wrk's core; CPU per request moves much less, and is the figure to
trust when the two disagree.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench import _load, _newsroom
from bench._measure import BenchError, Usage, descendants, read_proc, stat_cpu_s
from bench._publish_scenarios import READER_HEADERS, _check_load, _headers
from bench._report import Report, Row, Target, progress
from bench._service_scenarios import free_port

FEED = "/feeds/xa-hoi.rss"
CASES = ("200", "304")
SERVERS = ("feedsvc serve", "bare uvicorn+httptools")
REPS_LIMIT = 2.0  # bare req/s over feedsvc's: >= 0.5x asked
CPU_LIMIT = 2.0  # feedsvc CPU per request over the bare app's
_START_S = 60
_HOP = ("date", "connection")  # uvicorn's own: Date it adds, and urllib asked to close


@dataclass(frozen=True, slots=True)
class Plan:
    runs: int
    seconds: int  # of load per (server, case) and run
    warm_seconds: int


FULL = Plan(runs=3, seconds=5, warm_seconds=1)
QUICK = Plan(runs=1, seconds=2, warm_seconds=1)


@dataclass(frozen=True, slots=True)
class _Run:
    load: _load.Load
    cpu_s: float

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / max(self.load.requests, 1) * 1e6


def run(quick: bool) -> Report:
    plan = QUICK if quick else FULL
    if not _load.available():
        raise BenchError("serve: wrk is not installed (apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="feedsvc-bench-") as tmp:
        work = Path(tmp)
        progress("serve: storing 20 categories x 50 entries")
        db = _newsroom.build(work, categories=20, entries=50)
        port = free_port()
        config = work / "serve.yaml"
        _newsroom.write_config(config, db, categories=20, http_port=port)
        command = [sys.executable, "-m", "feedsvc", "serve", "--config", str(config)]
        with _server(command, work / "serve.log", f"http://127.0.0.1:{port}/healthz") as ours:
            spec = _capture(f"http://127.0.0.1:{port}{FEED}", work)
            bare_port = free_port()
            spec_file = work / "bare.json"
            spec_file.write_text(json.dumps(spec), encoding="utf-8")
            bare_command = [sys.executable, "-m", "bench._bare_asgi", str(spec_file)]
            bare_url = f"http://127.0.0.1:{bare_port}{FEED}"
            with _server([*bare_command, str(bare_port)], work / "bare.log", bare_url) as bare:
                _check_same(spec, bare_url)
                pids = {SERVERS[0]: ours.pid, SERVERS[1]: bare.pid}
                ports = {SERVERS[0]: port, SERVERS[1]: bare_port}
                runs = _measure(plan, work, pids, ports)
                pss = {name: _pss_mb(pid) for name, pid in pids.items()}
    return _report(plan, spec, runs, pss)


class _server:
    """A server process on the server core(s), up and answering ``probe``; stopped after."""

    def __init__(self, command: list[str], log: Path, probe: str) -> None:
        self.command, self.log, self.probe = [*_load.cores()[0], *command], log, probe

    def __enter__(self) -> subprocess.Popen[bytes]:
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                self.command, cwd=Path(__file__).parents[1], stdout=output, stderr=output
            )
        deadline = time.monotonic() + _START_S
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with urllib.request.urlopen(self.probe, timeout=1):
                    return self.process
            except OSError:
                time.sleep(0.1)
        self.__exit__()
        tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-10:])
        raise BenchError(f"{self.command[-4:]} did not come up:\n{tail}")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _answers(url: str, etag: str | None = None) -> list[tuple[list[list[str]], bytes]]:
    """The 200 (gzip) and 304 (with ``etag``, else the 200's) that ``url`` gives a reader,
    headers without Date and Connection."""
    found: list[tuple[list[list[str]], bytes]] = []
    for conditional in (False, True):
        headers = dict(READER_HEADERS)
        if conditional:
            headers["If-None-Match"] = etag or dict(found[0][0])["etag"]
        request = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                got, body = response.headers, response.read()
        except urllib.error.HTTPError as error:  # urllib raises on a 304
            got, body = error.headers, error.read()
        found.append(([[k.lower(), v] for k, v in got.items() if k.lower() not in _HOP], body))
    return found


def _capture(url: str, work: Path) -> dict[str, object]:
    """What feedsvc answers for ``url`` (200 gzip, and 304 with its ETag): the bare app's spec."""
    (ok, body), (same, _) = _answers(url)
    (work / "body.gz").write_bytes(body)
    return {
        "path": FEED,
        "etag": dict(ok)["etag"],
        "ok_headers": ok,
        "not_modified_headers": same,
        "body_file": str(work / "body.gz"),
        "body_bytes": len(body),
    }


def _check_same(spec: dict[str, object], url: str) -> None:
    """The bare app answers as feedsvc did, header for header and byte for byte."""
    (ok, body), (same, _) = _answers(url, str(spec["etag"]))
    expected = Path(str(spec["body_file"])).read_bytes()
    if (ok, same, body) != (spec["ok_headers"], spec["not_modified_headers"], expected):
        raise BenchError(f"the bare app answers otherwise than feedsvc: {ok} {same}")


def _tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants."""
    stats = [read_proc(f"/proc/{p}/stat") for p in (pid, *descendants(pid))]
    return sum(stat_cpu_s(stat) for stat in stats if stat)


def _pss_mb(pid: int) -> float:
    total = 0.0
    for p in (pid, *descendants(pid)):
        for line in read_proc(f"/proc/{p}/smaps_rollup").splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) / 1024
    return total


def _measure(
    plan: Plan, work: Path, pids: dict[str, int], ports: dict[str, int]
) -> dict[tuple[str, str], list[_Run]]:
    runs: dict[tuple[str, str], list[_Run]] = {(s, c): [] for s in SERVERS for c in CASES}
    script = work / "wrk.lua"
    for n in range(plan.runs):
        order = SERVERS if n % 2 == 0 else SERVERS[::-1]
        for server in order:
            url = f"http://127.0.0.1:{ports[server]}{FEED}"
            for case in CASES:
                progress(f"serve: {server}, {case} ({n + 1}/{plan.runs})")
                headers, probe = _headers(url, conditional=case == "304")
                if probe[0] != int(case):
                    raise BenchError(f"{server} answered {probe[0]} where {case} was expected")
                _load.wrk(url, headers, seconds=plan.warm_seconds, script=script)
                before = _tree_cpu_s(pids[server])
                load = _load.wrk(url, headers, seconds=plan.seconds, script=script)
                cpu_s = _tree_cpu_s(pids[server]) - before
                _check_load(load, probe)
                runs[server, case].append(_Run(load, cpu_s))
    return runs


def _spread(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def _report(
    plan: Plan,
    spec: dict[str, object],
    runs: dict[tuple[str, str], list[_Run]],
    pss: dict[str, float],
) -> Report:
    rows, targets, notes = [], [], []
    for (server, case), found in runs.items():
        usages = [Usage(r.cpu_s, r.cpu_s, r.load.seconds, 0.0, 0.0, 1, pss[server]) for r in found]
        rows.append(Row.of_runs(f"{server}, {case}", usages))
    for case in CASES:
        ours, bare = runs[SERVERS[0], case], runs[SERVERS[1], case]
        rps = [_spread([r.load.per_second for r in found]) for found in (ours, bare)]
        cpu = [_spread([r.cpu_us for r in found]) for found in (ours, bare)]
        targets += [
            Target(
                f"{case}: bare req/s / feedsvc req/s",
                rps[1][1] / rps[0][1],
                REPS_LIMIT,
                "x",
                f"feedsvc {rps[0][1]:,.0f} req/s = {rps[0][1] / rps[1][1]:.2f}x bare "
                f"{rps[1][1]:,.0f} (>= 0.5x asked); medians",
            ),
            Target(
                f"{case}: feedsvc CPU/request / bare's",
                cpu[0][1] / cpu[1][1],
                CPU_LIMIT,
                "x",
                f"{cpu[0][1]:.0f} us / {cpu[1][1]:.0f} us per request, medians",
            ),
        ]
        for server, r, c in zip(SERVERS, rps, cpu, strict=True):
            busy = statistics.median(run.cpu_s / run.load.seconds for run in runs[server, case])
            notes.append(
                f"{server}, {case}: {r[1]:,.0f} req/s (min {r[0]:,.0f}, max {r[2]:,.0f}); "
                f"server CPU {c[1]:.1f} us per request (min {c[0]:.1f}, max {c[2]:.1f}); "
                f"the server busy {busy:.0%} of its core"
            )
    targets.append(
        Target("peak memory of feedsvc serve (tree, PSS)", pss[SERVERS[0]], 300, "MB", "at the end")
    )
    server_cores, wrk_cores = _load.cores()
    body = int(str(spec["body_bytes"]))
    notes.append(
        f"{FEED}: a {body / 1024:.0f} KB gzip body; wrk -t{_load.THREADS} "
        f"-c{_load.CONNECTIONS} -d{plan.seconds}s after {plan.warm_seconds} s of warm-up, "
        + (
            f"pinned to core {wrk_cores[-1]}, servers to core(s) {server_cores[-1]} (taskset); "
            if wrk_cores
            else "no pinning (one core, or no taskset); "
        )
        + f"{plan.runs} runs, medians with min and max. The rows' CPU s is the server's "
        "during each load (its PSS at the end beside it)."
    )
    return Report(
        f"serve: {FEED}, 200 and 304, beside a bare uvicorn+httptools app", rows, targets, notes
    )
