"""Schedule periods: which scheduled time a digest belongs to, and the one before it.

A schedule is a cron expression in ``site.timezone``. The period of a digest is
the latest fire time at or before ``now``; a first digest covers one period
back from it. Pure: cron text, zone and ``now`` in, aware UTC datetimes out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

# How far back to look for the two latest fire times: short first (an hourly
# schedule), then longer (a monthly or yearly one).
_SPANS = (timedelta(hours=3), timedelta(days=3), timedelta(days=35), timedelta(days=400))


def latest_periods(cron: str, timezone: str, now: datetime) -> tuple[datetime, datetime]:
    """The two latest fire times at or before ``now``: ``(previous, current)``."""
    trigger = CronTrigger.from_crontab(cron, timezone=ZoneInfo(timezone))
    for span in _SPANS:
        times = _fire_times(trigger, now - span, now)
        if len(times) >= 2:
            return times[-2].astimezone(UTC), times[-1].astimezone(UTC)
    raise ValueError(f"schedule {cron!r} does not fire twice within a year")


def _fire_times(trigger: CronTrigger, start: datetime, end: datetime) -> list[datetime]:
    times: list[datetime] = []
    previous = None
    moment = trigger.get_next_fire_time(None, start)
    while moment is not None and moment <= end:
        times.append(moment)
        previous = moment
        moment = trigger.get_next_fire_time(previous, previous + timedelta(microseconds=1))
    return times[-2:]


def next_fire(cron: str, timezone: str, now: datetime) -> datetime:
    """The schedule's first fire time after ``now``: when the upcoming edition goes out."""
    trigger = CronTrigger.from_crontab(cron, timezone=ZoneInfo(timezone))
    moment: datetime | None = trigger.get_next_fire_time(None, now + timedelta(microseconds=1))
    if moment is None:
        raise ValueError(f"schedule {cron!r} never fires again")
    return moment.astimezone(UTC)


def is_fire_time(cron: str, timezone: str, moment: datetime) -> bool:
    """Whether ``moment`` is one of the schedule's fire times (not a period sent "now")."""
    return latest_periods(cron, timezone, moment)[1] == moment
