"""HTTP load on loopback with wrk: requests per second and latency percentiles.

``wrk -t1 -cN -dS`` (one thread, N keep-alive connections) drives one URL with
fixed headers; a Lua ``done`` hook prints the summary as one JSON line, so
nothing is scraped from wrk's human-readable output and no Lua runs per request.
On a machine with two or more cores, `cores` gives ``taskset`` prefixes that
pin wrk to the last core and the server to the others: one core each on two.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench._measure import BenchError

THREADS = 1
CONNECTIONS = 16
_DONE = """\
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "errors": %d, '
    .. '"p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True, slots=True)
class Load:
    """What one wrk run measured (``errors``: failed connections and non-2xx/3xx answers)."""

    requests: int
    seconds: float
    bytes: int
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def bytes_per_request(self) -> float:
        return self.bytes / max(self.requests, 1)


def available() -> bool:
    return shutil.which("wrk") is not None


def cores() -> tuple[list[str], list[str]]:
    """``taskset`` prefixes ``(server, wrk)``: one core each, or none on a single core."""
    count = os.cpu_count() or 1
    if count < 2 or shutil.which("taskset") is None:
        return [], []
    others = "0" if count == 2 else f"0-{count - 2}"
    return ["taskset", "-c", others], ["taskset", "-c", str(count - 1)]


def wrk(url: str, headers: dict[str, str], *, seconds: int, script: Path) -> Load:
    """Load ``url`` for ``seconds`` (whole seconds: wrk takes no fraction).

    ``script`` is where the Lua hook is written.
    """
    script.write_text(_DONE, encoding="utf-8")
    command = [*cores()[1], "wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s"]
    command += ["-s", str(script)]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    done = subprocess.run(
        [*command, url], capture_output=True, text=True, timeout=seconds + 30, check=False
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith('{"requests"')), "")
    if done.returncode != 0 or not line:
        said = (done.stderr or done.stdout).strip()[-500:]
        raise BenchError(f"wrk failed (exit {done.returncode}): {said}")
    figures = json.loads(line)
    return Load(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        bytes=figures["bytes"],
        errors=figures["errors"],
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
    )
