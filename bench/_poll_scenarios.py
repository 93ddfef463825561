"""The poll-command scenarios: one whole program run, its CPU counted from outside.

Each scenario starts a program as a child of this (isolated) interpreter and
counts the CPU of everything it ran: this process is made a child subreaper
(``prctl(PR_SET_CHILD_SUBREAPER)``), so a process the program left behind (the
forkserver's parse workers, exiting after their parent) is re-parented here
instead of to init, and is reaped here; every reaped descendant's user + system
time is in ``RUSAGE_CHILDREN``. Start-up is in the figure: `bench.poll` takes
the difference of two sizes, so it cancels out.

* ``command_scenario``: ``feedsvc poll --config CONFIG``, its standard output a
  terminal (a pty this process reads, so the progress bar is drawn) or a pipe;
* ``bare_scenario``: ``python -m bench._poll_scenarios VALIDATORS``, the same
  conditional GETs from one aiohttp session, ``CONCURRENCY`` at once, all 304.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import pty
import resource
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from bench._measure import BenchError, Usage

CONCURRENCY = 20  # the service's fetch.concurrency (its default)
_PR_SET_CHILD_SUBREAPER = 36
_REPO = Path(__file__).parents[1]


def command_scenario(params: dict[str, Any]) -> Usage:
    """``feedsvc poll`` over every source of ``config``; every answer must be a 304."""
    command = [sys.executable, "-m", "feedsvc", "poll", "--config", params["config"]]
    usage, output = _run(command, terminal=params["terminal"], log=Path(params["log"]))
    summary = f"{params['sources']} polled, 0 new, 0 failed"
    if summary not in output:
        raise BenchError(f"expected {summary!r} in the output; it ends {output[-300:]!r}")
    return usage


def prime_scenario(params: dict[str, Any]) -> Usage:
    """The first ``feedsvc poll``: every answer a 200, every entry new."""
    command = [sys.executable, "-m", "feedsvc", "poll", "--config", params["config"]]
    usage, output = _run(command, terminal=False, log=Path(params["log"]))
    if f"{params['sources']} polled" not in output or " 0 failed" not in output:
        raise BenchError(f"the priming poll did not poll every source: {output[-300:]!r}")
    return usage


def bare_scenario(params: dict[str, Any]) -> Usage:
    """The same requests, bare: this module as a program over ``validators``."""
    command = [sys.executable, "-m", "bench._poll_scenarios", params["validators"]]
    usage, output = _run(command, terminal=False, log=Path(params["log"]))
    if output.strip() != json.dumps({"304": params["sources"]}):
        raise BenchError(f"expected {params['sources']} answers 304, got {output.strip()!r}")
    return usage


def _run(command: list[str], *, terminal: bool, log: Path) -> tuple[Usage, str]:
    """Run ``command`` to its end, reap everything it left; its CPU and its output."""
    _become_subreaper()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with log.open("wb") as stderr:
        if terminal:
            output, status, own = _in_terminal(command, stderr)
        else:
            child = subprocess.Popen(command, cwd=_REPO, stdout=subprocess.PIPE, stderr=stderr)
            data, _ = child.communicate()
            output, status, own = data.decode(errors="replace"), child.returncode, None
    wall = time.perf_counter() - started
    _reap_orphans()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if status != 0:
        raise BenchError(f"{command[2:4]} exited {status}: {log.read_text()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    peak_mb = after.ru_maxrss / 1024  # the largest of any reaped process
    usage = Usage(
        cpu_s=cpu,
        main_cpu_s=own if own is not None else cpu,
        wall_s=wall,
        main_peak_mb=peak_mb,
        tree_peak_mb=peak_mb,
        processes=1,
    )
    return usage, output


def _in_terminal(command: list[str], stderr: Any) -> tuple[str, int, float]:
    """Run ``command`` with a pty as its standard output, drained by a thread."""
    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # the other side closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    child = subprocess.Popen(command, cwd=_REPO, stdout=slave, stderr=stderr)
    os.close(slave)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    reader.join(timeout=10)
    os.close(master)
    return (
        b"".join(chunks).decode(errors="replace"),
        child.returncode,
        usage.ru_utime + usage.ru_stime,
    )


def _become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise BenchError(f"prctl(PR_SET_CHILD_SUBREAPER) failed: errno {ctypes.get_errno()}")


def _reap_orphans() -> None:
    """Wait for every process re-parented here (they exit with the program they served)."""
    while True:
        try:
            os.wait()
        except ChildProcessError:
            return


# -- the bare loop (this module run as a program) --------------------------------------


async def conditional_gets(validators: dict[str, dict[str, str]]) -> Counter[int]:
    """GET every URL once with its validators, ``CONCURRENCY`` at once; the statuses."""
    slots = asyncio.Semaphore(CONCURRENCY)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def get(url: str, headers: dict[str, str]) -> int:
            async with slots, session.get(url, headers=headers) as response:
                await response.read()
                return response.status

        statuses = await asyncio.gather(*(get(u, h) for u, h in validators.items()))
    return Counter(statuses)


def main(argv: list[str]) -> None:
    """``python -m bench._poll_scenarios VALIDATORS_JSON``: print the statuses' counts."""
    validators = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    counts = asyncio.run(conditional_gets(validators))
    sys.stdout.write(json.dumps({str(k): v for k, v in sorted(counts.items())}) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
