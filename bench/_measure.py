"""Measuring a scenario: CPU seconds and peak memory of a whole process tree.

How CPU is counted. A scenario runs in a fresh Python process (``run_isolated``)
and marks the part to measure with ``with Window() as window:``. On entry and on
exit the window reads the CPU time (user + system) of the process itself
(``getrusage(RUSAGE_SELF)``: every thread, microsecond resolution) and of every
live descendant (``/proc/PID/stat``, clock ticks), found by walking parent pids
in ``/proc``. The figure is the difference. This counts what ``RUSAGE_CHILDREN``
cannot: a ``forkserver`` pool's workers are children of the fork server, not of
the measuring process, and are never reaped by it. The difference is exact as
long as no descendant exits inside the window (a process that exits takes its
last ticks with it); the window therefore raises if one did, and a scenario
shuts its pool down only after the window closes. A pool is started and warmed
before the window, as it is in the long-running service.

How memory is counted. ``main_peak_mb`` is the measured process's own
high-water resident set (``VmHWM``, kept by the kernel: no sampling involved).
``tree_peak_mb`` adds up ``VmHWM`` over the whole tree at the end of the window:
an upper bound, since pages a worker shares with the fork server count once per
process and peaks reached at different moments are added. ``pss_peak_mb`` is
the fair share: ``run_isolated`` samples the summed proportional set size
(``Pss`` in ``/proc/PID/smaps_rollup``, shared pages divided among their users)
of the scenario's tree ten times a second from outside it, so the sampling
costs the scenario nothing, and keeps the largest sum.

Linux only: it reads ``/proc``, so the benchmarks need no extra dependency.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self

_TICK_S = 1 / os.sysconf("SC_CLK_TCK")
_PSS_INTERVAL_S = 0.1
_REPO = Path(__file__).parents[1]


class BenchError(Exception):
    """A scenario could not be measured (it crashed, or its result was wrong)."""


@dataclass(frozen=True, slots=True)
class Usage:
    """What one measured window cost."""

    cpu_s: float  # user + system, the process and all its descendants
    main_cpu_s: float  # of which the measured process itself
    wall_s: float
    main_peak_mb: float  # VmHWM of the measured process
    tree_peak_mb: float  # sum of VmHWM over the process tree (an upper bound)
    processes: int  # size of the tree at the end of the window
    pss_peak_mb: float = 0.0  # largest sampled sum of Pss over the tree (run_isolated)


@dataclass(frozen=True, slots=True)
class _Proc:
    cpu_s: float
    peak_mb: float


def descendants(root: int) -> list[int]:
    """Every live descendant of ``root``, from the parent pids in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = read_proc(f"/proc/{entry.name}/stat")
            if stat:
                parent = int(stat_fields(stat)[1])
                children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _sample(pid: int) -> _Proc | None:
    """CPU time and peak RSS of ``pid``, or None if it has gone."""
    stat, status = read_proc(f"/proc/{pid}/stat"), read_proc(f"/proc/{pid}/status")
    if not stat or not status:
        return None
    return _Proc(cpu_s=stat_cpu_s(stat), peak_mb=_field_kb(status, "VmHWM:") / 1024)


def stat_fields(stat: str) -> list[str]:
    """The fields of a /proc/PID/stat text after "(comm)": the state is [0]."""
    return stat.rpartition(")")[2].split()


def stat_cpu_s(stat: str) -> float:
    """User + system CPU seconds from a /proc/PID/stat text."""
    fields = stat_fields(stat)
    return (int(fields[11]) + int(fields[12])) * _TICK_S  # utime, stime


def read_proc(path: str) -> str:
    """A /proc file's text, or "" if its process has gone."""
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            return file.read()
    except OSError:  # the process exited between listing and reading
        return ""


def _self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Window:
    """``with Window() as window: ...``, then ``window.usage`` (see the module docstring)."""

    def __init__(self) -> None:
        self._start: dict[int, _Proc] = {}
        self._self_cpu = 0.0
        self._wall = 0.0
        self._usage: Usage | None = None

    def __enter__(self) -> Self:
        self._start = self._tree()
        self._self_cpu = _self_cpu_s()
        self._wall = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        wall = time.perf_counter() - self._wall
        self_cpu = _self_cpu_s() - self._self_cpu
        end = self._tree()
        if exc_type is not None:
            return
        gone = set(self._start) - set(end)
        if gone:
            raise BenchError(f"processes {sorted(gone)} exited inside the window: CPU lost")
        children_cpu = sum(p.cpu_s - self._started(pid).cpu_s for pid, p in end.items())
        own = _sample(os.getpid())
        self._usage = Usage(
            cpu_s=self_cpu + children_cpu,
            main_cpu_s=self_cpu,
            wall_s=wall,
            main_peak_mb=own.peak_mb if own else 0.0,
            tree_peak_mb=(own.peak_mb if own else 0.0) + sum(p.peak_mb for p in end.values()),
            processes=1 + len(end),
        )

    @property
    def usage(self) -> Usage:
        if self._usage is None:
            raise BenchError("the window has not closed")
        return self._usage

    def _started(self, pid: int) -> _Proc:
        return self._start.get(pid, _Proc(0.0, 0.0))  # born inside the window

    @staticmethod
    def _tree() -> dict[int, _Proc]:
        """The descendants of this process (not itself: its CPU comes from getrusage)."""
        samples = {pid: _sample(pid) for pid in descendants(os.getpid())}
        return {pid: sample for pid, sample in samples.items() if sample is not None}


def run_isolated(target: str, params: dict[str, Any], *, timeout: float = 600) -> Usage:
    """Run ``module:function`` (``function(params) -> Usage``) in a fresh interpreter.

    Raises:
        BenchError: the scenario failed or overran ``timeout``; the message ends
            with its stderr.
    """
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        out, errors = Path(tmp) / "usage.json", Path(tmp) / "stderr.txt"
        command = [sys.executable, "-m", "bench._child", target, json.dumps(params), str(out)]
        with errors.open("w") as stderr:
            child = subprocess.Popen(command, cwd=_REPO, stdout=subprocess.DEVNULL, stderr=stderr)
            pss_peak_mb = _watch(child, timeout)
        if child.returncode != 0 or not out.exists():
            tail = "\n".join(errors.read_text().strip().splitlines()[-15:])
            raise BenchError(f"{target} failed (exit {child.returncode}):\n{tail}")
        usage = Usage(**json.loads(out.read_text()))
        return replace(usage, pss_peak_mb=pss_peak_mb)


def _watch(child: subprocess.Popen[bytes], timeout: float) -> float:
    """Wait for ``child``, sampling its tree's summed Pss; return the largest sum (MB)."""
    deadline = time.monotonic() + timeout
    peak = 0.0
    while child.poll() is None:
        if time.monotonic() > deadline:
            child.kill()
            child.wait()
            raise BenchError(f"timed out after {timeout:g} s")
        pids = [child.pid, *descendants(child.pid)]
        peak = max(peak, sum(_pss_mb(pid) for pid in pids))
        time.sleep(_PSS_INTERVAL_S)
    return peak


def _pss_mb(pid: int) -> float:
    rollup = read_proc(f"/proc/{pid}/smaps_rollup")
    return _field_kb(rollup, "Pss:") / 1024


def _field_kb(text: str, name: str) -> int:
    """A ``Name:   123 kB`` line of a /proc file, in kB (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name):
            return int(line.split()[1])
    return 0


def best(usages: list[Usage]) -> Usage:
    """The run with the least CPU: noise on a busy machine only ever adds time."""
    return min(usages, key=lambda usage: usage.cpu_s)


def median(usages: list[Usage]) -> Usage:
    """The run with the median CPU (the lower middle one of an even count)."""
    ordered = sorted(usages, key=lambda usage: usage.cpu_s)
    return ordered[(len(ordered) - 1) // 2]


def child_main(argv: list[str]) -> None:
    """``python -m bench._child MODULE:FUNCTION PARAMS_JSON OUT``: write the Usage to OUT."""
    target, params, out = argv
    module_name, _, function_name = target.partition(":")
    module = importlib.import_module(module_name)
    usage: Usage = getattr(module, function_name)(json.loads(params))
    Path(out).write_text(json.dumps(asdict(usage)))
