"""The service's health checks: the database answers, the disk has room.

``/healthz`` is open to anyone, so it says only ``ok`` or ``failing`` per check and
a generic reason: a driver's error names the database host, port and name. The
details go to the log, once when a check starts failing and once when it recovers
(a load balancer probing every few seconds must not flood it), and to the
operator's ``/status`` page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from feedsvc._text import clean_line
from feedsvc._units import format_size
from feedsvc.config import Config
from feedsvc.store import Store
from feedsvc.web import disk

log = logging.getLogger("feedsvc.web")

REASONS = {  # what /healthz says of a failing check, to anyone
    "database": "the database does not answer; see the service log",
    "disk": "the data folder's disk is full or nearly full",
}


@dataclass(frozen=True, slots=True)
class Check:
    """One check's outcome; ``detail`` is for the log and the operator, never /healthz."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Health:
    checks: list[Check]
    last_poll: datetime | None

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def public(self) -> dict[str, object]:
        """The /healthz body, without ``scheduler`` and ``last_poll``."""
        body: dict[str, object] = {"status": "ok" if self.ok else "error"}  # as before
        body.update({c.name: "ok" if c.ok else "failing" for c in self.checks})
        reasons = {c.name: REASONS[c.name] for c in self.checks if not c.ok}
        if reasons:
            body["reasons"] = reasons
        return body

    def check(self, name: str) -> Check:
        return next(check for check in self.checks if check.name == name)


class Checker:
    """Runs the checks (blocking: call it in a thread) and logs each change of state."""

    def __init__(self) -> None:
        self._failing: set[str] = set()

    def run(self, config: Config, store: Store) -> Health:
        """The last-poll query is the database check: one round trip, and it also fails
        when the schema is missing, which a bare ``SELECT 1`` would not see."""
        last_poll = None
        try:
            last_poll = store.sources.last_polled_at()
            database = Check("database", True, "")
        except Exception as exc:  # any driver error means the same to a load balancer
            database = Check("database", False, _driver_message(exc))
        space = disk.tightest(disk.written_folders(config))
        room = f"{format_size(space.free)} free of {format_size(space.total)} in {space.folder}"
        health = Health([database, Check("disk", not space.low, room)], last_poll)
        self._log_changes(health)
        return health

    def _log_changes(self, health: Health) -> None:
        for check in health.checks:
            if not check.ok and check.name not in self._failing:
                self._failing.add(check.name)
                fields = {"check": check.name, "detail": check.detail}
                log.error("health check failing", extra={"fields": fields})
            elif check.ok and check.name in self._failing:
                self._failing.discard(check.name)
                log.info("health check ok again", extra={"fields": {"check": check.name}})


def _driver_message(exc: BaseException) -> str:
    """The driver's own words, one line, without SQLAlchemy's statement and help link."""
    return clean_line(str(getattr(exc, "orig", None) or exc))[:300]
