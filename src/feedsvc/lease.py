"""Who holds a lease, whether that process still lives, and keeping a lease alive.

Work is claimed in the database with a lease (DESIGN.md, invariant 2). The
owner written into a lease names the process that holds it: its host, its pid
and the time it started, plus a random part so that two pollers or senders in
one process (tests, a reload) never pass for each other::

    web1:4242:1789012345:3f9c1a2b
    host  pid  start     random

A lease whose owner is on this host and whose pid is gone, or now belongs to a
process that started at another time (pids are reused), is dead: a claim on this
host may take it over at once instead of waiting for it to expire. A lease held
on another host can only expire. Hosts must therefore have distinct names.

:class:`Heartbeat` renews a batch's leases while its work is in flight, so a
slow relay or a slow feed never lets a live process's lease lapse and be taken
by someone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Collection, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Generic, TypeVar

log = logging.getLogger("feedsvc.lease")

K = TypeVar("K", bound=Hashable)

_HOST_LENGTH = 30  # lease_owner is String(64): host, pid, start and 8 random characters


@dataclass(frozen=True, slots=True)
class Owner:
    """A lease owner, parsed."""

    host: str
    pid: int
    start: int  # the process's start time, in clock ticks since boot (/proc/PID/stat)

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        """The owner named by ``text``; None for a name written by an older version."""
        parts = text.split(":")
        if len(parts) != 4 or not (parts[1].isdigit() and parts[2].isdigit()):
            return None
        return cls(parts[0], int(parts[1]), int(parts[2]))

    def describe(self) -> str:
        """``web1 pid 4242``: how a message names the holder."""
        return f"{self.host} pid {self.pid}"


@dataclass(frozen=True, slots=True)
class Holder:
    """Leases one owner holds on some kind of work, and until when."""

    owner: str
    count: int
    until: datetime


def process_owner() -> str:
    """A fresh owner name for this process (see the module docstring)."""
    return f"{_host()}:{os.getpid()}:{_start_ticks(os.getpid()) or 0}:{uuid.uuid4().hex[:8]}"


def is_dead(owner: str) -> bool:
    """Whether ``owner`` is a process of this host that no longer runs.

    False when it cannot be told: another host, an old-style name, or no /proc.
    """
    parsed = Owner.parse(owner)
    if parsed is None or parsed.host != _host() or not Path("/proc/self/stat").exists():
        return False
    return _start_ticks(parsed.pid) != parsed.start


def dead_owners(holders: Collection[Holder]) -> list[str]:
    """The holders whose process has died on this host: their leases may be taken now."""
    return [holder.owner for holder in holders if is_dead(holder.owner)]


def live_holders(holders: Collection[Holder], me: str) -> list[Holder]:
    """The holders other than ``me`` that are alive, or on another host: leases to wait for."""
    return [holder for holder in holders if holder.owner != me and not is_dead(holder.owner)]


def describe(holders: Collection[Holder], noun: tuple[str, str]) -> str:
    """One line on leases held by live or remote processes, for the CLI.

    ``noun`` is the thing held, singular and plural: ``("source", "sources")``.
    """
    count = sum(holder.count for holder in holders)
    until = max(holder.until for holder in holders)
    names = "; ".join(_name(holder.owner) for holder in holders)
    return (
        f"{count} {noun[count != 1]} leased by another process ({names}) until "
        f"{until.astimezone():%Y-%m-%d %H:%M:%S}; run again then, or with --wait"
    )


def _name(owner: str) -> str:
    parsed = Owner.parse(owner)
    if parsed is None:
        return owner
    if parsed.host != _host():
        return f"{parsed.describe()}, another host"
    return f"{parsed.describe()}, running"


@cache
def _host() -> str:
    return socket.gethostname()[:_HOST_LENGTH].replace(":", "-") or "localhost"


def _start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in ticks), or None: no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = stat[stat.rfind(b")") + 2 :].split()
    return int(fields[19])


class Heartbeat(Generic[K]):
    """Renews the leases of the work in flight every ``interval`` until it is done.

    ``renew(ids)`` extends the leases of ``ids`` that are still this owner's and
    returns those; an id missing from the answer was taken over (this process
    stalled past its lease) and is added to :attr:`lost`, so the caller does not
    send or record it.

    Use as ``async with Heartbeat(...) as beat:`` around the work, and call
    :meth:`done` as each item finishes.
    """

    def __init__(
        self,
        ids: Collection[K],
        renew: Callable[[list[K]], Awaitable[Collection[K]]],
        interval: timedelta,
    ) -> None:
        self._pending: set[K] = set(ids)
        self._renew = renew
        self._interval = max(interval.total_seconds(), 0.05)
        self.lost: set[K] = set()
        self._task: asyncio.Task[None] | None = None

    def done(self, item: K) -> None:
        self._pending.discard(item)

    async def __aenter__(self) -> Heartbeat[K]:
        self._task = asyncio.create_task(self._beat())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _beat(self) -> None:
        while self._pending:
            await asyncio.sleep(self._interval)
            ids = list(self._pending)
            if not ids:
                return
            try:
                kept = set(await self._renew(ids))
            except Exception:  # the next beat tries again; the lease has room for it
                log.exception("lease renewal failed")
                continue
            lost = {item for item in ids if item not in kept and item in self._pending}
            if lost:
                log.warning("leases lost", extra={"fields": {"count": len(lost)}})
                self.lost |= lost
                self._pending -= lost
