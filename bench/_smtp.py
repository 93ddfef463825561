"""The test SMTP server (tests/smtpserver.py) as a separate process, and what it received.

A sending benchmark's CPU figures are the sender's alone only if the server's
work is done elsewhere: this runs ``python -m tests.smtpserver --port 0`` (an
aiosmtpd server on 127.0.0.1 that keeps no message bodies), and when the block
ends stops it with SIGTERM, on which it prints its counts per recipient.
"""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench._measure import BenchError

_REPO = Path(__file__).parents[1]
_START_TIMEOUT_S = 30


@dataclass(slots=True)
class SmtpServer:
    """The running server's port; after the block, what it accepted."""

    port: int
    messages: int = 0
    recipients: dict[str, int] = field(default_factory=dict)  # accepted messages per address

    def check_each_once(self, addresses: set[str]) -> None:
        """Raise unless every address got exactly one message, and nobody else any."""
        doubled = sorted(a for a, n in self.recipients.items() if n != 1)
        missing, extra = addresses - set(self.recipients), set(self.recipients) - addresses
        if doubled or missing or extra or self.messages != len(addresses):
            raise BenchError(
                f"expected one message for each of {len(addresses)} addresses; the server "
                f"accepted {self.messages}: {len(missing)} missing (e.g. {sorted(missing)[:2]}), "
                f"{len(doubled)} not once (e.g. {doubled[:2]}), {len(extra)} unexpected"
            )


@contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    """Serve from a new process; yield it, and fill in its counts once it has stopped."""
    command = [sys.executable, "-m", "tests.smtpserver", "--port", "0"]
    process = subprocess.Popen(
        command, cwd=_REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        server = SmtpServer(_port(process))
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise BenchError("the SMTP server did not stop on SIGTERM") from None
    summary = json.loads(output.strip().splitlines()[-1])
    server.messages = summary["messages"]
    server.recipients = summary["recipients"]


def _port(process: subprocess.Popen[str]) -> int:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], _START_TIMEOUT_S)
    line = process.stdout.readline().strip() if ready else ""
    if not line.startswith("smtp://127.0.0.1:"):
        raise BenchError(f"the SMTP server did not start (exit {process.poll()}, said {line!r})")
    return int(line.rpartition(":")[2])
