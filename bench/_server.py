"""The test feed server (tests/feedserver.py) as a separate process.

A benchmark's CPU figures are the client's alone only if the server's work is
done elsewhere: this runs ``python -m tests.feedserver ROOT`` on 127.0.0.1 and
stops it (SIGTERM to its pid, then SIGKILL if it lingers) when the block ends.
With ``hosts`` > 1 it also listens on 127.0.0.2 … 127.0.0.N (same port), and
``feed_servers`` yields every host's base URL.
"""

from __future__ import annotations

import select
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench._measure import BenchError

_REPO = Path(__file__).parents[1]
_START_TIMEOUT_S = 30


@contextmanager
def feed_server(root: Path) -> Iterator[str]:
    """Serve ``root`` from a new process; yield its base URL (``http://127.0.0.1:PORT``)."""
    with feed_servers(root, hosts=1) as base_urls:
        yield base_urls[0]


@contextmanager
def feed_servers(root: Path, *, hosts: int) -> Iterator[list[str]]:
    """Serve ``root`` on ``hosts`` loopback addresses from one new process; yield their
    base URLs."""
    command = [sys.executable, "-m", "tests.feedserver", str(root), "--port", "0"]
    server = subprocess.Popen(
        [*command, "--hosts", str(hosts)],
        cwd=_REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        yield _base_urls(server)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _base_urls(server: subprocess.Popen[str]) -> list[str]:
    assert server.stdout is not None
    ready, _, _ = select.select([server.stdout], [], [], _START_TIMEOUT_S)
    line = server.stdout.readline().strip() if ready else ""
    if not line.startswith("http://127.0.0.1:"):
        raise BenchError(f"the feed server did not start (exit {server.poll()}, said {line!r})")
    return line.split()
