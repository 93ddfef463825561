"""The console benchmark of issue 14: ``/admin/subscribers`` with 100,000 subscribers.

A SQLite database is filled with ``readers`` subscribers (``tests._readers``: mostly
active, some pending or unsubscribed, two schedules, one or two categories), then
``feedsvc serve`` runs it in a process of its own with the console on, and this
process signs in and times whole requests over loopback (keep-alive off: each is a
new connection, as a browser's first visit): the first page; a folded search for a
whole address with capitals and a ``+tag`` (two index lookups); a search for a piece
of an address (``LIKE '%…%'``: it reads every row, the worst case); and a filtered page
20 pages deep (status and category, through the keyset cursor). Each is asked
``runs`` times; the figure is the median, with min and max beside it.

The rows' CPU and memory are the server process's (``/proc``), over all its runs.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests._net import free_port
from tests._readers import add_many

from bench._measure import BenchError, Usage, read_proc, stat_cpu_s
from bench._report import Report, Row, Target, progress
from feedsvc import config as config_module
from feedsvc import signin
from feedsvc.model import utcnow
from feedsvc.store import Store

LIMIT_MS = 200.0
_REPO = Path(__file__).parents[1]
PASSWORD = "mật khẩu đo"


@dataclass(frozen=True, slots=True)
class Plan:
    readers: int
    runs: int


FULL = Plan(readers=100_000, runs=30)
QUICK = Plan(readers=5_000, runs=5)


def run(quick: bool) -> Report:
    plan = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="feedsvc-bench-") as tmp:
        config = _newsroom(Path(tmp), plan.readers)
        with _served(config) as (base, pid):
            client = _signed_in(base)
            scenarios = _scenarios(client, base)
            rows, targets = [], []
            for label, path in scenarios:
                before = _cpu(pid)
                started = time.perf_counter()
                times = [client.time(path) for _ in range(plan.runs)]
                usage = _usage(pid, before, time.perf_counter() - started)
                rows.append(Row(label, usage, plan.runs))
                targets.append(_target(label, times))
    title = f"admin: /admin/subscribers with {plan.readers:,} subscribers (SQLite)"
    notes = [
        "requests over loopback from this process, one connection each; CPU and memory"
        " columns are the feedsvc serve process's, summed over the runs",
    ]
    return Report(title, rows, targets, notes)


def _newsroom(folder: Path, readers: int) -> Path:
    port = free_port()
    path = folder / "config.yaml"
    path.write_text(
        f"""\
site:
  title: "Bản tin đo"
  base_url: "http://127.0.0.1:{port}"
http:
  port: {port}
  admin: true
categories:
  - id: xa-hoi
    title: "Xã hội"
  - id: kinh-te
    title: "Kinh tế"
newsletter:
  from: "Bản tin <bantin@example.vn>"
  schedules:
    daily: "0 7 * * *"
    weekly: "0 7 * * 1"
""",
        encoding="utf-8",
    )
    config = config_module.load(path)
    progress(f"admin: {readers:,} subscribers")
    store = Store.open(config.database_url)
    try:
        add_many(store, readers, now=utcnow(), categories=["xa-hoi", "kinh-te"])
    finally:
        store.close()
    return path


class _served:
    """``feedsvc serve`` with the console on; yields its base URL and pid."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.server: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> tuple[str, int]:
        text = self.config.read_text(encoding="utf-8")
        port = re.search(r"port: (\d+)", text)
        assert port is not None
        env = {**os.environ, "FEEDSVC_ADMIN_PASSWORD_HASH": signin.hash_password(PASSWORD)}
        command = [sys.executable, "-m", "feedsvc", "serve", "--config", str(self.config)]
        self.server = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL, cwd=_REPO)
        base = f"http://127.0.0.1:{port.group(1)}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1):
                    return base, self.server.pid
            except OSError:
                time.sleep(0.2)
        raise BenchError("feedsvc serve did not come up")

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.terminate()
            try:
                self.server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()


class _Client:
    def __init__(self) -> None:
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def read(self, url: str, fields: dict[str, str] | None = None) -> str:
        data = urllib.parse.urlencode(fields).encode() if fields is not None else None
        with self.opener.open(urllib.request.Request(url, data=data), timeout=30) as response:
            return str(response.read().decode())

    def time(self, url: str) -> float:
        started = time.perf_counter()
        with self.opener.open(url, timeout=30) as response:
            response.read()
            if response.status != 200:
                raise BenchError(f"{url}: HTTP {response.status}")
        return (time.perf_counter() - started) * 1000


def _signed_in(base: str) -> _Client:
    client = _Client()
    form = client.read(f"{base}/admin/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    if token is None:
        raise BenchError("no sign-in form at /admin/login")
    page = client.read(f"{base}/admin/login", {"password": PASSWORD, "csrf_token": token.group(1)})
    if "subscribers" not in page:
        raise BenchError("signing in to the console failed")
    return client


def _scenarios(client: _Client, base: str) -> list[tuple[str, str]]:
    """(label, URL): the first page, a folded search, a filtered page 20 pages deep."""
    deep = f"{base}/admin/subscribers?status=active&category=kinh-te"
    for _ in range(20):
        found = re.search(r'href="([^"]+)">(?:Trang sau|Next page)<', client.read(deep))
        if found is None:
            break
        deep = found.group(1).replace("&amp;", "&")
    address = urllib.parse.quote("Doc.Gia.4242+tin@Example.VN")
    return [
        ("first page", f"{base}/admin/subscribers"),
        ("folded search, a whole address", f"{base}/admin/subscribers?q={address}"),
        ("a piece of an address (every row)", f"{base}/admin/subscribers?q=GIA.4242"),
        ("status + category, 20 pages deep", deep),
    ]


def _cpu(pid: int) -> float:
    return stat_cpu_s(read_proc(f"/proc/{pid}/stat"))


def _usage(pid: int, cpu_before: float, wall: float) -> Usage:
    status = read_proc(f"/proc/{pid}/status")
    peak = next((int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmHWM:")), 0)
    cpu = _cpu(pid) - cpu_before
    return Usage(cpu, cpu, wall, peak / 1024, peak / 1024, 1)


def _target(label: str, times: list[float]) -> Target:
    median = statistics.median(times)
    detail = f"min {min(times):.0f} / median {median:.0f} / max {max(times):.0f} ms"
    return Target(f"{label}: median", median, LIMIT_MS, "ms", detail)
