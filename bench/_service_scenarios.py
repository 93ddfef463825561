"""The two subjects of the service benchmark, each a process of its own, and their records.

* **the service**: ``feedsvc --log-format json run --config CONFIG``, exactly as an
  operator starts it (SQLite in the benchmark's folder, mail to the outbox, no
  newsletter schedule that fires during the run). Its log (stderr, into a file)
  has one JSON event per poll, ``{"time": ..., "event": "polled", "source": ...,
  "status": ...}``: the benchmark reads the poll times and outcomes from it.
* **the bare loop**: ``python -m bench._service_scenarios URLS_FILE INTERVAL_S``,
  the same conditional requests on the same schedule with nothing else: one
  aiohttp ClientSession, ``CONCURRENCY`` requests at once, a tick every
  ``TICK_S`` seconds (the service's poll tick) that requests every URL whose
  interval has passed since its last request, with the ETag and Last-Modified of
  the first answer. It writes one JSON line per tick that requested something
  (``start``, ``end``, ``requests``, ``statuses``) to stdout, into a file.

`Subject` starts either as a subprocess and stops it (SIGTERM, then SIGKILL);
`Lines` reads the JSON lines a subject has written so far.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TextIO
from zoneinfo import ZoneInfo

import aiohttp

from bench._measure import BenchError

CONCURRENCY = 20  # the service's fetch.concurrency (its default)
TICK_S = 15  # feedsvc.schedule.POLL_TICK_SECONDS: how often the service claims due sources
TIMEZONE = "Asia/Ho_Chi_Minh"
_REPO = Path(__file__).parents[1]
_STOP_TIMEOUT_S = 30  # the service's own grace (schedule.STOP_GRACE) is 20 s


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_config(*, work: Path, urls: list[str], interval_s: int, port: int) -> str:
    """config.yaml for the service: every feed a source, nothing that fires during the run.

    The one newsletter schedule is monthly, at an hour twelve hours from now, so no
    digest job runs inside the window whatever the date (there are no subscribers
    either).
    """
    hour = (datetime.now(ZoneInfo(TIMEZONE)) + timedelta(hours=12)).hour
    lines = [
        "site:",
        '  title: "Đo hiệu năng"',
        f'  base_url: "http://127.0.0.1:{port}"',
        f"  timezone: {TIMEZONE}",
        f'data_dir: "{work / "var"}"',
        "storage:",
        f'  url: "sqlite:///{work / "feedsvc.db"}"',
        "http:",
        f"  port: {port}",
        "fetch:",
        "  allow_private_networks: true",
        f"  interval: {interval_s}s",
        f"  concurrency: {CONCURRENCY}",
        "newsletter:",
        f'  schedules: {{monthly: "0 {hour} 1 * *"}}',
        "  default_schedule: monthly",
        "mail:",
        "  backend: outbox",
        "sources:",
    ]
    for url in urls:
        lines += [f"  - id: {Path(url).stem}", f'    url: "{url}"']
    return "\n".join(lines) + "\n"


class Subject:
    """A measured process: started with its output going to ``log``, stopped on exit."""

    def __init__(self, name: str, command: list[str], *, log: Path, output: str) -> None:
        """``output`` is ``"stdout"`` or ``"stderr"``: which stream ``log`` receives."""
        self.name = name
        self.log = log
        with log.open("wb") as file:
            streams: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
            streams[output] = file
            self.process = subprocess.Popen(command, cwd=_REPO, stdin=subprocess.DEVNULL, **streams)
        self.lines = Lines(log)
        self.exit_code: int | None = None
        self.stop_s = 0.0

    @property
    def pid(self) -> int:
        return self.process.pid

    def check_alive(self) -> None:
        """Raise if the process has exited: the benchmark cannot go on without it."""
        code = self.process.poll()
        if code is not None:
            raise BenchError(f"{self.name} exited (status {code}) mid-run:\n{self.tail()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``_STOP_TIMEOUT_S``; keeps the exit status."""
        if self.process.poll() is None:
            started = time.monotonic()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.stop_s = time.monotonic() - started
        if self.exit_code is None:
            self.exit_code = self.process.returncode

    def tail(self, lines: int = 15) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.strip().splitlines()[-lines:])

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_service(config: Path, log: Path) -> Subject:
    command = [sys.executable, "-m", "feedsvc", "--log-format", "json", "run"]
    return Subject("feedsvc run", [*command, "--config", str(config)], log=log, output="stderr")


def start_bare_loop(urls: Path, interval_s: int, log: Path) -> Subject:
    command = [sys.executable, "-m", "bench._service_scenarios", str(urls), str(interval_s)]
    return Subject("the bare loop", command, log=log, output="stdout")


class Lines:
    """The JSON objects of a growing file of JSON lines, read incrementally."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset = 0
        self.seen: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        """Every complete line so far (non-JSON lines, e.g. a traceback, are skipped)."""
        with self._path.open("rb") as file:
            file.seek(self._offset)
            data = file.read()
        complete = data[: data.rfind(b"\n") + 1]
        self._offset += len(complete)
        for line in complete.decode("utf-8", errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                self.seen.append(event)
        return self.seen


def event_time(event: dict[str, Any]) -> float:
    """A service log event's time, in seconds since the epoch."""
    return datetime.fromisoformat(event["time"]).timestamp()


# -- the bare loop (this module run as a program) --------------------------------------


async def bare_loop(urls: list[str], interval_s: float, out: TextIO) -> None:
    """Request each URL every ``interval_s``, conditionally once its validators are known."""
    loop = asyncio.get_running_loop()
    validators: dict[str, dict[str, str]] = {url: {} for url in urls}
    due = dict.fromkeys(urls, 0.0)
    slots = asyncio.Semaphore(CONCURRENCY)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def get(url: str) -> int:
            async with slots:
                due[url] = loop.time() + interval_s
                async with session.get(url, headers=validators[url]) as response:
                    await response.read()
                    if response.status == 200:
                        validators[url] = {
                            "If-None-Match": response.headers["ETag"],
                            "If-Modified-Since": response.headers["Last-Modified"],
                        }
                    return response.status

        tick = loop.time()
        while True:
            now = loop.time()
            todo = [url for url, at in due.items() if at <= now]
            if todo:
                started = time.time()
                statuses = await asyncio.gather(*(get(url) for url in todo))
                record = {
                    "start": started,
                    "end": time.time(),
                    "requests": len(todo),
                    "statuses": dict(Counter(str(status) for status in statuses)),
                }
                out.write(json.dumps(record) + "\n")
                out.flush()
            tick += TICK_S
            await asyncio.sleep(max(0.0, tick - loop.time()))


def main(argv: list[str]) -> None:
    """``python -m bench._service_scenarios URLS_FILE INTERVAL_S``: loop until SIGTERM."""
    urls_file, interval_s = argv
    urls = Path(urls_file).read_text(encoding="utf-8").split()
    asyncio.run(bare_loop(urls, float(interval_s), sys.stdout))


if __name__ == "__main__":
    main(sys.argv[1:])
