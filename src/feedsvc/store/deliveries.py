"""Deliveries: one row per (subscriber, schedule, period), and the state machine that
makes each digest go out exactly once.

    pending ──claim──▶ sending ──▶ sent | failed | unknown
       │  ▲                │
       │  └── retry (4xx) ─┘        pending ──▶ empty (nothing new: no email)

Rows are created with INSERT … ON CONFLICT DO NOTHING, so every process that
fires the same schedule creates each period's rows once. A claim moves rows to
``sending`` under a lease; a process killed mid-send leaves ``sending`` rows
whose lease expires, and the next claim sends them again with the same
Message-ID (the only case in which a subscriber may see a second copy).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, bindparam, func, or_, select, update

from feedsvc.model import Delivery, DeliveryState
from feedsvc.store.engine import any_row, insert, reading, writing
from feedsvc.store.schema import deliveries

_CLOSED = (DeliveryState.SENT.value, DeliveryState.UNKNOWN.value, DeliveryState.EMPTY.value)


def to_delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        subscriber_id=row.subscriber_id,
        schedule=row.schedule,
        period=row.period,
        since=row.since,
        until=row.until,
        state=DeliveryState(row.state),
        message_id=row.message_id,
        attempts=row.attempts,
        last_error=row.last_error,
    )


class DeliveryStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(
        self,
        schedule: str,
        period: datetime,
        windows: Sequence[tuple[int, datetime, datetime, str]],
        now: datetime,
    ) -> int:
        """Create the period's rows ``(subscriber_id, since, until, message_id)``; skip existing.

        Returns how many rows this call created (0 when another process was first).
        """
        if not windows:
            return 0
        rows = [
            {
                "subscriber_id": subscriber_id,
                "schedule": schedule,
                "period": period,
                "since": since,
                "until": until,
                "state": DeliveryState.PENDING.value,
                "message_id": message_id,
                "attempts": 0,
                "created_at": now,
            }
            for subscriber_id, since, until, message_id in windows
        ]
        with writing(self._engine) as conn:
            statement = insert(conn, deliveries).on_conflict_do_nothing(
                index_elements=["subscriber_id", "schedule", "period"]
            )
            # rowcount is not reliable for executemany; RETURNING lists only inserted rows.
            return len(conn.execute(statement.returning(deliveries.c.id), rows).all())

    def last_until(self, schedule: str) -> dict[int, datetime]:
        """Per subscriber, where their next digest of ``schedule`` starts.

        That is where the last digest that went out (or had nothing to send)
        ended. Failed ones do not count: their entries come again in the next
        digest rather than being lost, so a subscriber whose every digest failed
        starts where the first one did.
        """
        closed = (
            select(deliveries.c.subscriber_id, func.max(deliveries.c.until))
            .where(deliveries.c.schedule == schedule)
            .where(deliveries.c.state.in_(_CLOSED))
            .group_by(deliveries.c.subscriber_id)
        )
        first = (
            select(deliveries.c.subscriber_id, func.min(deliveries.c.since))
            .where(deliveries.c.schedule == schedule)
            .group_by(deliveries.c.subscriber_id)
        )
        with reading(self._engine) as conn:
            starts = {subscriber: since for subscriber, since in conn.execute(first)}
            starts.update({subscriber: until for subscriber, until in conn.execute(closed)})
        return starts

    def claim(
        self,
        owner: str,
        now: datetime,
        lease: timedelta,
        *,
        schedule: str | None = None,
        limit: int = 200,
    ) -> list[Delivery]:
        """Lease deliveries that are due: pending ones, and ``sending`` ones whose
        process died (lease expired). They become ``sending`` with one more attempt."""
        due = or_(
            and_(
                deliveries.c.state == DeliveryState.PENDING.value,
                or_(deliveries.c.next_attempt_at.is_(None), deliveries.c.next_attempt_at <= now),
            ),
            and_(
                deliveries.c.state == DeliveryState.SENDING.value,
                deliveries.c.lease_until < now,
            ),
        )
        candidates = select(deliveries.c.id).where(due).order_by(deliveries.c.id).limit(limit)
        if schedule is not None:
            candidates = candidates.where(deliveries.c.schedule == schedule)
        if not any_row(self._engine, candidates):
            return []
        claim = (  # one statement, as SourceStore.claim does
            update(deliveries)
            .where(
                deliveries.c.id.in_(candidates.with_for_update(skip_locked=True).scalar_subquery())
            )
            .values(
                state=DeliveryState.SENDING.value,
                attempts=deliveries.c.attempts + 1,
                lease_owner=owner,
                lease_until=now + lease,
            )
            .returning(*deliveries.c)
        )
        with writing(self._engine) as conn:
            rows = conn.execute(claim)
            return sorted((to_delivery(row) for row in rows), key=lambda d: d.id)

    def finish(
        self, delivery_id: int, state: DeliveryState, now: datetime, error: str | None = None
    ) -> None:
        """Close a delivery: sent, failed, unknown or empty."""
        self.finish_many([(delivery_id, state, now, error)])

    def finish_many(
        self, outcomes: Sequence[tuple[int, DeliveryState, datetime, str | None]]
    ) -> None:
        """Close several deliveries ``(id, state, now, error)`` in one transaction.

        The sender batches the outcomes that arrive while its previous write
        commits (group commit): one commit per message cost a quarter of sending's CPU.
        """
        if not outcomes:
            return
        statement = (
            update(deliveries)
            .where(deliveries.c.id == bindparam("b_id"))
            .values(
                state=bindparam("b_state"),
                last_error=bindparam("b_error"),
                sent_at=bindparam("b_sent", type_=deliveries.c.sent_at.type),
                lease_owner=None,
                lease_until=None,
            )
        )
        rows = [
            {
                "b_id": delivery_id,
                "b_state": state.value,
                "b_error": error,
                "b_sent": now if state is DeliveryState.SENT else None,
            }
            for delivery_id, state, now, error in outcomes
        ]
        with writing(self._engine) as conn:
            conn.execute(statement, rows)

    def retry(self, delivery_id: int, error: str, at: datetime) -> None:
        """Back to pending after a temporary failure; not claimable before ``at``."""
        values = {"state": DeliveryState.PENDING.value, "last_error": error, "next_attempt_at": at}
        self._set(delivery_id, values)

    def _set(self, delivery_id: int, values: dict[str, Any]) -> None:
        with writing(self._engine) as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(**values, lease_owner=None, lease_until=None)
            )

    def counts(self, schedule: str | None = None) -> dict[str, int]:
        """How many deliveries are in each state."""
        query = select(deliveries.c.state, func.count()).group_by(deliveries.c.state)
        if schedule is not None:
            query = query.where(deliveries.c.schedule == schedule)
        with reading(self._engine) as conn:
            return {state: count for state, count in conn.execute(query)}

    def next_attempt(self, schedule: str | None = None) -> datetime | None:
        """When the earliest pending retry becomes due (None: nothing is waiting)."""
        query = select(func.min(deliveries.c.next_attempt_at)).where(
            deliveries.c.state == DeliveryState.PENDING.value
        )
        if schedule is not None:
            query = query.where(deliveries.c.schedule == schedule)
        with reading(self._engine) as conn:
            value = conn.execute(query).scalar_one_or_none()
        return value if isinstance(value, datetime) else None
