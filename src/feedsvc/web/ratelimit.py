"""Sliding-window rate limits for the sign-up form, kept in this process's memory.

A limit slows down a bot that signs up strangers (each sign-up mails the address)
and a person hammering the button. Counts live in memory because losing them on
a restart costs nothing; the price is that each process counts separately, so
with N processes behind one address the effective limit is up to N times the
configured one. DESIGN.md's "no state that matters lives only in a process's
memory" holds: nothing here matters after an hour.
"""

from __future__ import annotations

from collections import deque
from datetime import timedelta

SWEEP_EVERY = 1000
"""Forget keys with no recent hits after this many checks, so memory stays bounded."""


class SlidingWindow:
    """At most ``limit`` hits per key in any ``window``-long stretch of time."""

    def __init__(self, limit: int, window: timedelta) -> None:
        self.limit = limit
        self.window = window.total_seconds()
        self._hits: dict[str, deque[float]] = {}
        self._checks = 0

    def allow(self, key: str, now: float) -> bool:
        """Count a hit for ``key`` at ``now`` (seconds, monotonic) if it is within the limit.

        A refused attempt is not counted: someone who waits out the window gets in,
        however often they tried meanwhile.
        """
        self._checks += 1
        if self._checks % SWEEP_EVERY == 0:
            self._sweep(now)
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return False
        hits.append(now)
        return True

    def _sweep(self, now: float) -> None:
        stale = [
            key for key, hits in self._hits.items() if not hits or hits[-1] <= now - self.window
        ]
        for key in stale:
            del self._hits[key]
