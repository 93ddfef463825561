"""Deliveries: one row per (subscriber, schedule, period), and the state machine that
makes each digest go out exactly once.

    pending ──claim──▶ sending ──▶ sent | failed | unknown
       │  ▲                │
       │  └── retry (4xx) ─┘        pending ──▶ empty (nothing new: no email)
       │
       └ … sent | unknown ──▶ bounced (a delivery report that came back later)

Rows are created with INSERT … ON CONFLICT DO NOTHING, so every process that
fires the same schedule creates each period's rows once. A claim moves rows to
``sending`` under a lease (``lease_owner`` names the process: see
``feedsvc.lease``); the sender renews it while the row is in flight, and an
outcome is recorded only under the lease that sent it. A process killed
mid-send leaves ``sending`` rows whose lease expires, or that a claim on the
same host takes over at once, and they are sent again with the same Message-ID
(the only case in which a subscriber may see a second copy).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, case, func, or_, select, update

from feedsvc.lease import Holder
from feedsvc.model import Delivery, DeliveryHistory, DeliveryOutcome, DeliveryState
from feedsvc.store.engine import any_row, insert, reading, writing
from feedsvc.store.schema import deliveries

_CLOSED = (
    DeliveryState.SENT.value,
    DeliveryState.UNKNOWN.value,
    DeliveryState.EMPTY.value,
    DeliveryState.BOUNCED.value,  # it went out: its window is done, whatever came back
)
_BOUNCEABLE = (DeliveryState.SENT.value, DeliveryState.UNKNOWN.value)
_OPEN = (DeliveryState.PENDING.value, DeliveryState.SENDING.value)
_SENDING = DeliveryState.SENDING.value


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

    def histories(self, schedule: str) -> dict[int, DeliveryHistory]:
        """Per subscriber, what their deliveries of ``schedule`` so far say about the next."""
        open_ = func.max(case((deliveries.c.state.in_(_OPEN), 1), else_=0))
        delivered = func.max(case((deliveries.c.state.in_(_CLOSED), deliveries.c.until)))
        open_until = func.max(case((deliveries.c.state.in_(_OPEN), deliveries.c.until)))
        query = (
            select(
                deliveries.c.subscriber_id,
                open_,
                delivered,
                func.min(deliveries.c.since),
                open_until,
            )
            .where(deliveries.c.schedule == schedule)
            .group_by(deliveries.c.subscriber_id)
        )
        with reading(self._engine) as conn:
            return {
                subscriber: DeliveryHistory(bool(is_open), until, since, ends)
                for subscriber, is_open, until, since, ends in conn.execute(query)
            }

    def claim(
        self,
        owner: str,
        now: datetime,
        lease: timedelta,
        *,
        schedule: str | None = None,
        limit: int = 200,
        take_over: Collection[str] = (),
    ) -> list[Delivery]:
        """Lease deliveries that are due to ``owner``; they become ``sending`` with one
        more attempt.

        Due are pending rows whose retry time has come, and ``sending`` rows whose
        process died: their lease expired, or their owner is one of ``take_over``
        (dead processes of this host, see ``feedsvc.lease``). A row ``owner`` holds
        itself is never taken again, even with its lease expired: it may still be
        in flight.
        """
        taken = deliveries.c.lease_until < now
        if take_over:
            taken = or_(taken, deliveries.c.lease_owner.in_(list(take_over)))
        due = or_(
            and_(
                deliveries.c.state == DeliveryState.PENDING.value,
                or_(deliveries.c.next_attempt_at.is_(None), deliveries.c.next_attempt_at <= now),
            ),
            and_(deliveries.c.state == _SENDING, deliveries.c.lease_owner != owner, taken),
        )
        # No ORDER BY: on SQLite it made every claim gather and sort all pending rows
        # (an OR over two index ranges); the index gives new rows in id order anyway.
        candidates = select(deliveries.c.id).where(due).limit(limit)
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
                state=_SENDING,
                attempts=deliveries.c.attempts + 1,
                lease_owner=owner,
                lease_until=now + lease,
            )
            .returning(*deliveries.c)
        )
        with writing(self._engine) as conn:
            rows = conn.execute(claim)
            return sorted((to_delivery(row) for row in rows), key=lambda d: d.id)

    def holders(self, now: datetime, schedule: str | None = None) -> list[Holder]:
        """Who holds unexpired leases on deliveries (of ``schedule``), how many, until when."""
        query = (
            select(deliveries.c.lease_owner, func.count(), func.max(deliveries.c.lease_until))
            .where(deliveries.c.state == _SENDING, deliveries.c.lease_until >= now)
            .group_by(deliveries.c.lease_owner)
        )
        if schedule is not None:
            query = query.where(deliveries.c.schedule == schedule)
        with reading(self._engine) as conn:
            return [
                Holder(owner, count, until)
                for owner, count, until in conn.execute(query)
                if owner is not None
            ]

    def renew(self, owner: str, ids: Sequence[int], until: datetime) -> list[int]:
        """Extend ``owner``'s leases on ``ids`` to ``until``; return the ids still its own."""
        if not ids:
            return []
        with writing(self._engine) as conn:
            return list(
                conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id.in_(list(ids)))
                    .where(deliveries.c.lease_owner == owner, deliveries.c.state == _SENDING)
                    .values(lease_until=until)
                    .returning(deliveries.c.id)
                ).scalars()
            )

    def finish(
        self,
        owner: str,
        delivery_id: int,
        state: DeliveryState,
        now: datetime,
        error: str | None = None,
    ) -> bool:
        """Close a delivery ``owner`` holds: sent, failed, unknown or empty."""
        outcome = DeliveryOutcome(delivery_id, state, now, error)
        return bool(self.finish_many(owner, [outcome]))

    def finish_many(self, owner: str, outcomes: Sequence[DeliveryOutcome]) -> set[int]:
        """Close several deliveries in one transaction, each only if ``owner`` still holds
        its lease; return the ids that were recorded.

        The sender batches the outcomes that arrive while its previous write
        commits (group commit): one commit per message cost a quarter of sending's
        CPU. The rows still held are locked and read first, then all written by
        one prepared statement (executemany): building a statement per outcome
        (every time and most editions differ) cost more than the commit.
        """
        if not outcomes:
            return set()
        ids = [outcome.delivery_id for outcome in outcomes]
        with writing(self._engine) as conn:
            held = _HELD.with_for_update() if conn.dialect.name == "postgresql" else _HELD
            mine = set(conn.execute(held, {"ids": ids, "owner": owner}).scalars())
            rows = [_finished(outcome) for outcome in outcomes if outcome.delivery_id in mine]
            if rows:
                conn.execute(_FINISH, rows)
        return mine

    def retry(self, owner: str, delivery_id: int, error: str, at: datetime) -> bool:
        """Back to pending after a temporary failure; not claimable before ``at``.

        Only under ``owner``'s lease; False when the row was taken over meanwhile.
        """
        with writing(self._engine) as conn:
            result = conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .where(deliveries.c.lease_owner == owner, deliveries.c.state == _SENDING)
                .values(
                    state=DeliveryState.PENDING.value,
                    last_error=error,
                    next_attempt_at=at,
                    lease_owner=None,
                    lease_until=None,
                )
                .returning(deliveries.c.id)
            )
            return result.first() is not None

    def open_periods(self, schedule: str) -> list[datetime]:
        """The periods of ``schedule`` with deliveries still pending or sending, oldest first."""
        query = (
            select(deliveries.c.period)
            .where(deliveries.c.schedule == schedule, deliveries.c.state.in_(_OPEN))
            .distinct()
            .order_by(deliveries.c.period)
        )
        with reading(self._engine) as conn:
            return list(conn.execute(query).scalars())

    def period_report(
        self, schedule: str, period: datetime
    ) -> tuple[dict[str, int], datetime | None]:
        """How the deliveries of one period ended (count per state), and the last send time."""
        query = (
            select(deliveries.c.state, func.count(), func.max(deliveries.c.sent_at))
            .where(deliveries.c.schedule == schedule, deliveries.c.period == period)
            .group_by(deliveries.c.state)
        )
        with reading(self._engine) as conn:
            rows = conn.execute(query).all()
        sent = [at for _, _, at in rows if at is not None]
        return {state: count for state, count, _ in rows}, max(sent, default=None)

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


def mark_bounced(conn: Connection, delivery_id: int, error: str | None) -> bool:
    """Mark a sent (or unknown) delivery bounced, inside the caller's transaction.

    True only for the report that made the change: a second report about the same
    delivery, or one about a delivery that never went out, changes nothing.
    """
    result = conn.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id, deliveries.c.state.in_(_BOUNCEABLE))
        .values(state=DeliveryState.BOUNCED.value, last_error=error)
        .returning(deliveries.c.id)
    )
    return result.first() is not None


# finish_many's two statements, built once: the rows still held by an owner, and one
# outcome written to its row.
_HELD = select(deliveries.c.id).where(
    deliveries.c.id.in_(bindparam("ids", expanding=True)),
    deliveries.c.lease_owner == bindparam("owner"),
    deliveries.c.state == _SENDING,
)
_FINISH = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"))
    .values(
        state=bindparam("b_state"),
        last_error=bindparam("b_error"),
        sent_at=bindparam("b_sent_at"),
        edition=bindparam("b_edition"),
        lease_owner=None,
        lease_until=None,
    )
)


def _finished(outcome: DeliveryOutcome) -> dict[str, Any]:
    return {
        "b_id": outcome.delivery_id,
        "b_state": outcome.state.value,
        "b_error": outcome.error,
        "b_sent_at": outcome.at if outcome.state is DeliveryState.SENT else None,
        "b_edition": outcome.edition,
    }
