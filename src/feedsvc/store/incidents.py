"""Incidents of sources (``ingest.alerts``): at most one unresolved per source, and the
claim that lets one process of many send each of its emails.

Every process evaluates the same sources. A new incident is an ``INSERT … ON CONFLICT
DO NOTHING`` on the partial unique index of unresolved incidents, so processes that
see a failure at once record it once; every other change is an ``UPDATE`` whose
``WHERE`` holds the state it expects. A notice is claimed with a conditional
``UPDATE`` that writes a lease (``notice_owner``, ``notice_until``): one claimer
wins, sends, and records the email as sent; a claimer that dies leaves a lease that
expires, and the email is sent by the next one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, or_, select, update

from feedsvc.model import (
    Incident,
    IncidentChange,
    IncidentKind,
    NewIncident,
    NoticeKind,
    OpenIncident,
    ResolveIncident,
    Source,
)
from feedsvc.store.engine import insert, reading, writing
from feedsvc.store.schema import entries, incidents, sources
from feedsvc.store.sources import to_source


def to_incident(row: Any) -> Incident:
    return Incident(
        id=row.id,
        source_id=row.source_id,
        kind=IncidentKind(row.kind),
        since=row.since,
        detected_at=row.detected_at,
        last_error=row.last_error,
        opened_at=row.opened_at,
        notified_at=row.notified_at,
        resolved_at=row.resolved_at,
        recovered=bool(row.recovered),
        recovery_notified_at=row.recovery_notified_at,
    )


_SENT_COLUMN = {NoticeKind.OPENED: "notified_at", NoticeKind.RECOVERED: "recovery_notified_at"}


class IncidentStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def sources(self) -> list[Source]:
        """Every source's health columns (without counting entries: this runs each minute)."""
        with reading(self._engine) as conn:
            return [to_source(row) for row in conn.execute(select(sources))]

    def published_since(self, since: datetime) -> set[str]:
        """The sources with a new entry after ``since``: none of them is quiet.

        Reads only the recent end of ``ix_entries_first_seen_at``, so the costly history
        below is read for the few sources that have been silent that long.
        """
        query = select(entries.c.source_id).where(entries.c.first_seen_at > since).distinct()
        with reading(self._engine) as conn:
            return set(conn.execute(query).scalars())

    def arrivals(self, source_ids: Sequence[str], per_source: int) -> dict[str, list[datetime]]:
        """Each source's newest ``per_source`` distinct first-seen times (backlog left
        out), oldest first: the history its rhythm is measured on."""
        if not source_ids:
            return {}
        seen = (
            select(entries.c.source_id, entries.c.first_seen_at)
            .where(entries.c.backlog.is_(False), entries.c.source_id.in_(list(source_ids)))
            .distinct()
            .subquery()
        )
        newest = func.row_number().over(
            partition_by=seen.c.source_id, order_by=seen.c.first_seen_at.desc()
        )
        ranked = select(seen.c.source_id, seen.c.first_seen_at, newest.label("n")).subquery()
        query = select(ranked.c.source_id, ranked.c.first_seen_at).where(ranked.c.n <= per_source)
        history: dict[str, list[datetime]] = {}
        with reading(self._engine) as conn:
            for source_id, seen_at in conn.execute(query):
                history.setdefault(source_id, []).append(seen_at)
        return {source_id: sorted(times) for source_id, times in history.items()}

    def unresolved(self) -> list[Incident]:
        query = select(incidents).where(incidents.c.resolved_at.is_(None)).order_by(incidents.c.id)
        with reading(self._engine) as conn:
            return [to_incident(row) for row in conn.execute(query)]

    def open(self) -> list[Incident]:
        """Incidents worth an alert and not resolved: what /status and /metrics show."""
        query = (
            select(incidents)
            .where(incidents.c.resolved_at.is_(None), incidents.c.opened_at.is_not(None))
            .order_by(incidents.c.opened_at, incidents.c.id)
        )
        with reading(self._engine) as conn:
            return [to_incident(row) for row in conn.execute(query)]

    def apply(self, changes: Sequence[IncidentChange], now: datetime) -> None:
        """Apply one evaluation's changes in one transaction, in order."""
        if not changes:
            return
        with writing(self._engine) as conn:
            for change in changes:
                _apply(conn, change, now)

    def due_notices(self, now: datetime) -> list[Incident]:
        """Incidents that may owe an email (``ingest.alerts.notice_due`` says which) and that
        no live claim is sending."""
        opened = and_(
            incidents.c.opened_at.is_not(None),
            incidents.c.notified_at.is_(None),
            incidents.c.resolved_at.is_(None),
        )
        recovered = and_(
            incidents.c.recovered.is_(True),
            incidents.c.notified_at.is_not(None),
            incidents.c.recovery_notified_at.is_(None),
        )
        query = (
            select(incidents)
            .where(or_(opened, recovered), _unclaimed(now))
            .order_by(incidents.c.id)
        )
        with reading(self._engine) as conn:
            return [to_incident(row) for row in conn.execute(query)]

    def claim_notice(
        self, incident_id: int, kind: NoticeKind, owner: str, now: datetime, lease: timedelta
    ) -> bool:
        """Take the sending of one notice; True for the one claimer that got it."""
        sent = incidents.c[_SENT_COLUMN[kind]]
        statement = (
            update(incidents)
            .where(incidents.c.id == incident_id, sent.is_(None), _unclaimed(now))
            .values(notice_owner=owner, notice_until=now + lease)
            .returning(incidents.c.id)
        )
        if kind is NoticeKind.OPENED:
            statement = statement.where(incidents.c.opened_at.is_not(None))
        else:
            statement = statement.where(incidents.c.notified_at.is_not(None))
        with writing(self._engine) as conn:
            return conn.execute(statement).first() is not None

    def finish_notice(
        self, incident_id: int, kind: NoticeKind, owner: str, now: datetime, *, sent: bool
    ) -> None:
        """Record the notice as sent (or give the claim back to try again later)."""
        values: dict[str, Any] = {"notice_owner": None, "notice_until": None}
        if sent:
            values[_SENT_COLUMN[kind]] = now
        with writing(self._engine) as conn:
            conn.execute(
                update(incidents)
                .where(incidents.c.id == incident_id, incidents.c.notice_owner == owner)
                .values(**values)
            )

    def open_counts(self) -> dict[IncidentKind, int]:
        """Open incidents by kind (a scrape of /metrics)."""
        query = (
            select(incidents.c.kind, func.count())
            .where(incidents.c.resolved_at.is_(None), incidents.c.opened_at.is_not(None))
            .group_by(incidents.c.kind)
        )
        with reading(self._engine) as conn:
            return {IncidentKind(kind): count for kind, count in conn.execute(query)}


def _unresolved(incident_id: int) -> Any:
    return update(incidents).where(incidents.c.id == incident_id, incidents.c.resolved_at.is_(None))


def _unclaimed(now: datetime) -> Any:
    return or_(incidents.c.notice_until.is_(None), incidents.c.notice_until < now)


def _apply(conn: Connection, change: IncidentChange, now: datetime) -> None:
    if isinstance(change, NewIncident):
        statement = insert(conn, incidents).values(
            source_id=change.source_id,
            kind=change.kind.value,
            since=change.since,
            detected_at=now,
            last_error=change.error,
            opened_at=now if change.opened else None,
            recovered=False,
        )
        # Another process may have seen the same problem first: its row is the one.
        conn.execute(
            statement.on_conflict_do_nothing(
                index_elements=["source_id"], index_where=incidents.c.resolved_at.is_(None)
            )
        )
    elif isinstance(change, OpenIncident):
        opening = _unresolved(change.incident_id).where(incidents.c.opened_at.is_(None))
        conn.execute(opening.values(opened_at=now))
    elif isinstance(change, ResolveIncident):
        closing = _unresolved(change.incident_id)
        conn.execute(closing.values(resolved_at=now, recovered=change.recovered))
    else:
        conn.execute(_unresolved(change.incident_id).values(last_error=change.error))
