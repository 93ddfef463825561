"""What the operator console reads about the service's work: each source's last polls and
new entries per day, and how each sent period's deliveries ended.

Reads only; the rows come from the poll (``store.sources`` writes the history), the
sender (deliveries) and ``store.subscribers.erase`` (the counts of deleted readers).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select, tuple_

from feedsvc.model import Edition
from feedsvc.store.editions import to_edition, went_out
from feedsvc.store.engine import reading
from feedsvc.store.schema import deliveries, delivery_tallies, editions, entries, poll_history


@dataclass(frozen=True, slots=True)
class PollMark:
    """One poll's outcome: ``ok``, ``new`` (stored new entries), ``error`` or ``retired``."""

    at: datetime
    outcome: str


@dataclass(frozen=True, slots=True)
class PeriodReport:
    """A sent period of a schedule: its deliveries by state (deleted readers' included) and
    the editions it sent (the variants a reader can open on the web)."""

    schedule: str
    period: datetime
    counts: Mapping[str, int]
    editions: tuple[Edition, ...]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class ActivityStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def polls(self) -> dict[str, list[PollMark]]:
        """Each source's kept poll marks, oldest first (at most ``POLL_HISTORY`` each)."""
        query = select(poll_history.c.source_id, poll_history.c.at, poll_history.c.outcome)
        marks: dict[str, list[PollMark]] = defaultdict(list)
        with reading(self._engine) as conn:
            for source_id, at, outcome in conn.execute(query.order_by(poll_history.c.id)):
                marks[source_id].append(PollMark(at, outcome))
        return dict(marks)

    def entries_per_day(self, since: datetime, timezone: str) -> dict[str, dict[date, int]]:
        """New entries (backlog left out) per source and day in ``timezone``, from ``since``."""
        with reading(self._engine) as conn:
            day = _local_day(conn.dialect.name, entries.c.first_seen_at, timezone, since)
            query = (
                select(entries.c.source_id, day, func.count())
                .where(entries.c.first_seen_at >= since, entries.c.backlog.is_(False))
                .group_by(entries.c.source_id, day)
            )
            counted: dict[str, dict[date, int]] = defaultdict(dict)
            for source_id, text, count in conn.execute(query):
                counted[source_id][date.fromisoformat(text)] = count
        return dict(counted)

    def periods(self, *, before: datetime | None = None, limit: int = 20) -> list[PeriodReport]:
        """Sent periods, newest first (``before`` a period: the next page), with their counts."""
        query = select(editions.c.schedule, editions.c.period).distinct()
        if before is not None:
            query = query.where(editions.c.period < before)
        query = query.order_by(editions.c.period.desc(), editions.c.schedule).limit(limit)
        with reading(self._engine) as conn:
            keys = [(schedule, period) for schedule, period in conn.execute(query)]
            if not keys:
                return []
            counts = _counts(conn, keys)
            sent = conn.execute(
                select(editions)
                .where(tuple_(editions.c.schedule, editions.c.period).in_(keys))
                .where(went_out())
                .order_by(editions.c.locale, editions.c.id)
            )
            variants: dict[tuple[str, datetime], list[Edition]] = defaultdict(list)
            for row in sent:
                variants[(row.schedule, row.period)].append(to_edition(row))
        return [
            PeriodReport(key[0], key[1], counts.get(key, {}), tuple(variants[key])) for key in keys
        ]


def _counts(
    conn: Any, keys: Sequence[tuple[str, datetime]]
) -> dict[tuple[str, datetime], dict[str, int]]:
    """Deliveries by state of each (schedule, period), live rows and deleted readers' counts."""
    live = (
        select(deliveries.c.schedule, deliveries.c.period, deliveries.c.state, func.count())
        .where(tuple_(deliveries.c.schedule, deliveries.c.period).in_(keys))
        .group_by(deliveries.c.schedule, deliveries.c.period, deliveries.c.state)
    )
    tallied = (
        select(
            delivery_tallies.c.schedule,
            delivery_tallies.c.period,
            delivery_tallies.c.state,
            func.sum(delivery_tallies.c.count),
        )
        .where(tuple_(delivery_tallies.c.schedule, delivery_tallies.c.period).in_(keys))
        .group_by(delivery_tallies.c.schedule, delivery_tallies.c.period, delivery_tallies.c.state)
    )
    counts: dict[tuple[str, datetime], dict[str, int]] = defaultdict(dict)
    for query in (live, tallied):
        for schedule, period, state, count in conn.execute(query):
            per_state = counts[(schedule, period)]
            per_state[state] = per_state.get(state, 0) + int(count)
    return counts


def _local_day(dialect: str, column: Any, timezone: str, at: datetime) -> Any:
    """``column``'s calendar day in ``timezone`` as ``YYYY-MM-DD`` text.

    PostgreSQL converts each time with the zone's own rules; SQLite shifts by the
    zone's offset at ``at`` (a zone that changes its clocks within the 30 days moves
    the entries of one hour to a neighbouring day).
    """
    if dialect == "postgresql":
        return func.to_char(func.timezone(timezone, column), "YYYY-MM-DD")
    offset = ZoneInfo(timezone).utcoffset(at.replace(tzinfo=None))
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    return func.date(column, f"{minutes:+d} minutes")
