"""Small helpers for tests that start servers on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    """A port nothing listens on right now (the caller binds it soon after)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def taken_port() -> Iterator[int]:
    """A port another program listens on, for as long as the block runs."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def wait_until_up(url: str, timeout: float = 30) -> None:
    """Return once ``url`` answers; fail the test if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


@contextmanager
def running(
    command: list[str], health_url: str, env: dict[str, str] | None = None
) -> Iterator[None]:
    """``command`` (a server) running until the block ends; it is up once ``health_url`` answers."""
    server = subprocess.Popen(command, env=env)
    try:
        wait_until_up(health_url)
        yield
    finally:
        server.terminate()
        server.wait(timeout=20)
