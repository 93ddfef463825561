"""Delivery reports read after sending: one row each, recorded in the same transaction as
what the report changed, so a report read twice — by two processes, after a restart, or
once from the mailbox and once from a file — changes things once.

The row is inserted first with ``INSERT … ON CONFLICT DO NOTHING`` on its key: the
process whose insert lands applies the effect; a concurrent one waits for that
commit (PostgreSQL) or for the write lock (SQLite), finds the row, and does nothing.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from feedsvc.model import Delivery, ReportOutcome, ReportRecord, SubscriberStatus
from feedsvc.store.deliveries import mark_bounced, to_delivery
from feedsvc.store.engine import insert, reading, writing
from feedsvc.store.schema import bounce_reports, deliveries, subscribers
from feedsvc.store.subscribers import count_bounce


class Effect(StrEnum):
    """What a matched report does to its delivery and subscriber."""

    BOUNCE = "bounce"  # a permanent failure
    UNSUBSCRIBE = "unsubscribe"  # a complaint
    RECORD = "record"  # a transient failure: only recorded
    KEEP = "keep"  # a failure or complaint that matched no delivery: kept for a person
    IGNORE = "ignore"  # not a failure: a success notice, an auto-reply


_RECORD_ONLY = {
    Effect.RECORD: ReportOutcome.RECORDED,
    Effect.KEEP: ReportOutcome.UNMATCHED,
    Effect.IGNORE: ReportOutcome.IGNORED,
}


class BounceStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def apply(
        self, record: ReportRecord, effect: Effect, *, bounce_limit: int
    ) -> ReportOutcome | None:
        """Record ``record`` and apply ``effect`` in one transaction; return the outcome, or
        None when this report was processed before (nothing changes then)."""
        with writing(self._engine) as conn:
            report_id = _insert(conn, record)
            if report_id is None:
                return None
            if effect in _RECORD_ONLY:
                outcome = _RECORD_ONLY[effect]
            else:
                outcome = _effect(conn, record, effect, bounce_limit)
            conn.execute(
                update(bounce_reports)
                .where(bounce_reports.c.id == report_id)
                .values(outcome=outcome.value)
            )
        return outcome

    def seen(self, report_key: str) -> bool:
        """Whether a report with this key was processed already."""
        query = select(bounce_reports.c.id).where(bounce_reports.c.report_key == report_key)
        with reading(self._engine) as conn:
            return conn.execute(query).first() is not None

    def delivery(self, delivery_id: int) -> Delivery | None:
        with reading(self._engine) as conn:
            row = conn.execute(select(deliveries).where(deliveries.c.id == delivery_id)).first()
        return to_delivery(row) if row else None

    def delivery_for(self, subscriber_id: int, schedule: str, period: datetime) -> Delivery | None:
        """The delivery of one subscriber's digest of one period (the unique key)."""
        query = select(deliveries).where(
            deliveries.c.subscriber_id == subscriber_id,
            deliveries.c.schedule == schedule,
            deliveries.c.period == period,
        )
        with reading(self._engine) as conn:
            row = conn.execute(query).first()
        return to_delivery(row) if row else None

    def recipient(self, subscriber_id: int) -> str | None:
        """The subscriber's address, to check that a report names it."""
        query = select(subscribers.c.email).where(subscribers.c.id == subscriber_id)
        with reading(self._engine) as conn:
            value = conn.execute(query).scalar_one_or_none()
        return value if isinstance(value, str) else None

    def outcomes(self) -> dict[str, int]:
        """How many reports ended in each outcome."""
        query = select(bounce_reports.c.outcome, func.count()).group_by(bounce_reports.c.outcome)
        with reading(self._engine) as conn:
            return {outcome: count for outcome, count in conn.execute(query)}

    def records(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest processed reports, newest first (for an operator's console)."""
        query = (
            select(bounce_reports)
            .order_by(bounce_reports.c.received_at.desc(), bounce_reports.c.id.desc())
            .limit(limit)
        )
        with reading(self._engine) as conn:
            return [dict(row._mapping) for row in conn.execute(query)]


def _insert(conn: Connection, record: ReportRecord) -> int | None:
    statement = (
        insert(conn, bounce_reports)
        .values(
            report_key=record.report_key,
            sha256=record.sha256,
            message_id=record.message_id,
            origin=record.origin,
            received_at=record.received_at,
            kind=record.kind.value,
            recipients=list(record.recipients),
            original_message_id=record.original_message_id,
            delivery_id=record.delivery_id,
            subscriber_id=record.subscriber_id,
            matched_by=record.matched_by,
            outcome=ReportOutcome.UNMATCHED.value,  # replaced in the same transaction
            detail=record.detail,
            raw=record.raw,
        )
        .on_conflict_do_nothing(index_elements=["report_key"])
        .returning(bounce_reports.c.id)
    )
    value = conn.execute(statement).scalar_one_or_none()
    return int(value) if value is not None else None


def _effect(
    conn: Connection, record: ReportRecord, effect: Effect, bounce_limit: int
) -> ReportOutcome:
    assert record.delivery_id is not None
    assert record.subscriber_id is not None
    if effect is Effect.UNSUBSCRIBE:
        changed = conn.execute(
            update(subscribers)
            .where(subscribers.c.id == record.subscriber_id)
            .where(subscribers.c.status != SubscriberStatus.UNSUBSCRIBED.value)
            .values(status=SubscriberStatus.UNSUBSCRIBED.value)
            .returning(subscribers.c.id)
        ).first()
        return ReportOutcome.UNSUBSCRIBED if changed else ReportOutcome.ALREADY_UNSUBSCRIBED
    if not mark_bounced(conn, record.delivery_id, record.detail):
        state = conn.execute(
            select(deliveries.c.state).where(deliveries.c.id == record.delivery_id)
        ).scalar_one_or_none()
        return ReportOutcome.ALREADY_BOUNCED if state == "bounced" else ReportOutcome.NOT_SENT
    if count_bounce(conn, record.subscriber_id, bounce_limit):
        return ReportOutcome.SUBSCRIBER_BOUNCED
    return ReportOutcome.BOUNCED
