"""The confirmation queue: one durable row per sign-up, resend or import that asks to confirm.

The rows are also the record the per-mailbox limits count, so every process
sharing the database enforces one limit. ``mailbox`` is a hash of the canonical
mailbox (newsletter.consent), never a second copy of the address.

A sign-up is one transaction that does the same statements whoever asks: insert
the address if it is new (or nothing), read its row, write its columns back
(changed or not), queue a row. What changes is decided by the caller's rule
(newsletter.consent), which runs inside the transaction so that two sign-ups of
one address at once cannot both see it as new. The same work for a known and a
new address is what keeps the form from telling them apart by its timing.

Rows move ``queued -> sending -> sent | failed | skipped``; a claim takes due
rows with a lease, as deliveries are taken (store.deliveries).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, or_, select, update

from feedsvc.model import Confirmation, Subscriber, SubscriberStatus
from feedsvc.store.engine import any_row, insert, reading, writing
from feedsvc.store.schema import confirmations, subscribers
from feedsvc.store.subscribers import address_columns, email_key, new_key, to_subscriber

QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
SKIPPED = "skipped"

Limit = tuple[int, timedelta]
Rule = Callable[[Subscriber, bool], Mapping[str, Any]]
"""(the subscriber as stored, whether this sign-up created it) -> its columns to write."""

_CLAIM_LOCK = 7210419  # PostgreSQL: one claim at a time, so spacing holds across processes


class ConfirmationStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def sign_up(
        self,
        fields: Mapping[str, Any],
        *,
        mailbox: str,
        origin: str,
        limit: Limit,
        rule: Rule,
        now: datetime,
    ) -> tuple[Subscriber, int] | None:
        """Store a sign-up of ``fields["email"]`` and queue its confirmation.

        ``fields`` are the columns of a new row (email, categories, schedule,
        locale, timezone). Returns the subscriber as written and the queued row's
        id, or None when ``mailbox`` already has ``limit`` rows in its window.
        """
        with writing(self._engine) as conn:
            if _over_limit(conn, mailbox, limit, now):
                return None
            stored, created = _insert_or_nothing(conn, fields, now)
            subscriber = _write_back(conn, stored, rule(stored, created))
            return subscriber, _queue(conn, subscriber.id, mailbox, origin, now)

    def enqueue(
        self, subscriber_id: int, *, mailbox: str, origin: str, limit: Limit, now: datetime
    ) -> int | None:
        """Queue a confirmation (a resend, an import); None when the mailbox is at its limit."""
        with writing(self._engine) as conn:
            if _over_limit(conn, mailbox, limit, now):
                return None
            return _queue(conn, subscriber_id, mailbox, origin, now)

    def any_due(self, now: datetime) -> bool:
        """Whether a claim would find anything (a read, so an idle tick writes nothing)."""
        return any_row(self._engine, select(confirmations.c.id).where(_due(now)))

    def claim(
        self,
        owner: str,
        now: datetime,
        *,
        lease: timedelta,
        spacing: timedelta,
        only: Collection[int] | None = None,
        limit: int = 50,
    ) -> list[Confirmation]:
        """Take due rows to send; skip those that must not be sent.

        A row is skipped when its subscriber is no longer pending (confirmed or
        gone meanwhile, or never pending: a sign-up of an active address), and
        when its mailbox was sent a confirmation less than ``spacing`` ago, by
        anyone; of several rows for one mailbox, the newest is sent.
        """
        with writing(self._engine) as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_CLAIM_LOCK})")
            query = select(confirmations).where(_due(now))
            if only is not None:
                query = query.where(confirmations.c.id.in_(list(only)))
            rows = list(conn.execute(query.order_by(confirmations.c.id.desc()).limit(limit)))
            people = _subscribers(conn, {row.subscriber_id for row in rows})
            chosen, skipped = _choose(rows, people, _recently_sent(conn, rows, now - spacing))
            for reason, ids in skipped.items():
                _set(conn, ids, state=SKIPPED, detail=reason, lease_owner=None, lease_until=None)
            _set(
                conn,
                [row.id for row in chosen],
                state=SENDING,
                lease_owner=owner,
                lease_until=now + lease,
                attempted_at=now,
                attempts=confirmations.c.attempts + 1,
            )
        return [
            Confirmation(row.id, people[row.subscriber_id], row.attempts + 1)
            for row in reversed(chosen)
        ]

    def finish(self, confirmation_id: int, owner: str, state: str, detail: str | None) -> None:
        """Record an outcome, only under the lease that sent it."""
        with writing(self._engine) as conn:
            conn.execute(
                update(confirmations)
                .where(confirmations.c.id == confirmation_id)
                .where(confirmations.c.lease_owner == owner)
                .values(state=state, detail=detail, lease_owner=None, lease_until=None)
            )

    def retry(self, confirmation_id: int, owner: str, at: datetime, detail: str) -> None:
        """Put a row back in the queue, due ``at`` (the server said: try later)."""
        with writing(self._engine) as conn:
            conn.execute(
                update(confirmations)
                .where(confirmations.c.id == confirmation_id)
                .where(confirmations.c.lease_owner == owner)
                .values(
                    state=QUEUED,
                    detail=detail,
                    next_attempt_at=at,
                    lease_owner=None,
                    lease_until=None,
                )
            )

    def outcomes(self, ids: Collection[int]) -> dict[int, tuple[str, str | None]]:
        """Each row's state and detail ("too soon", the server's reply…), by id."""
        query = select(confirmations.c.id, confirmations.c.state, confirmations.c.detail)
        with reading(self._engine) as conn:
            rows = conn.execute(query.where(confirmations.c.id.in_(list(ids))))
            return {row.id: (row.state, row.detail) for row in rows}

    def states(self) -> dict[str, int]:
        """How many rows are in each state (for tests and the operator)."""
        with reading(self._engine) as conn:
            query = select(confirmations.c.state, func.count()).group_by(confirmations.c.state)
            return {state: count for state, count in conn.execute(query)}

    def purge(self, before: datetime) -> int:
        """Forget rows older than ``before``: past every limit's window."""
        old = confirmations.c.created_at < before
        if not any_row(self._engine, select(confirmations.c.id).where(old)):
            return 0
        with writing(self._engine) as conn:
            return conn.execute(delete(confirmations).where(old)).rowcount


def _over_limit(conn: Connection, mailbox: str, limit: Limit, now: datetime) -> bool:
    """Whether ``mailbox`` has its ``limit`` of rows; on PostgreSQL, lock it first.

    The lock (per mailbox, until commit) makes count-then-insert atomic across
    processes; SQLite's writer lock already does.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({int(mailbox[:15], 16)})")
    count, window = limit
    query = (
        select(func.count())
        .select_from(confirmations)
        .where(confirmations.c.mailbox == mailbox)
        .where(confirmations.c.created_at > now - window)
    )
    return int(conn.execute(query).scalar_one()) >= count


def _insert_or_nothing(
    conn: Connection, fields: Mapping[str, Any], now: datetime
) -> tuple[Subscriber, bool]:
    """The address's row, inserted as pending with a fresh key if it was not here."""
    key = email_key(fields["email"])
    values = {
        **fields,
        **address_columns(fields["email"]),
        "categories": list(fields["categories"]),
        "topics": list(fields.get("topics", ())),
        "status": SubscriberStatus.PENDING.value,
        "created_at": now,
        "confirmed_at": None,
        "bounce_count": 0,
        "key": new_key(),
    }
    statement = insert(conn, subscribers).values(**values)
    statement = statement.on_conflict_do_nothing(index_elements=["email_key"])
    inserted = conn.execute(statement.returning(subscribers.c.id)).first()
    query = select(subscribers).where(subscribers.c.email_key == key)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return to_subscriber(conn.execute(query).one()), inserted is not None


def _write_back(conn: Connection, subscriber: Subscriber, values: Mapping[str, Any]) -> Subscriber:
    changes = dict(values)
    if isinstance(changes.get("status"), SubscriberStatus):
        changes["status"] = changes["status"].value
    for name in ("categories", "topics"):
        if name in changes:
            changes[name] = list(changes[name])
    row = conn.execute(
        update(subscribers)
        .where(subscribers.c.id == subscriber.id)
        .values(**changes)
        .returning(*subscribers.c)
    ).one()
    return to_subscriber(row)


def _queue(conn: Connection, subscriber_id: int, mailbox: str, origin: str, now: datetime) -> int:
    return int(
        conn.execute(
            confirmations.insert()
            .values(
                subscriber_id=subscriber_id,
                mailbox=mailbox,
                origin=origin,
                state=QUEUED,
                attempts=0,
                created_at=now,
            )
            .returning(confirmations.c.id)
        ).scalar_one()
    )


def _due(now: datetime) -> Any:
    c = confirmations.c
    waiting = and_(c.state == QUEUED, or_(c.next_attempt_at.is_(None), c.next_attempt_at <= now))
    abandoned = and_(c.state == SENDING, c.lease_until < now)  # its sender died
    return or_(waiting, abandoned)


def _recently_sent(conn: Connection, rows: Sequence[Any], since: datetime) -> set[str]:
    """The mailboxes among ``rows``' that another row was sent to after ``since``."""
    if not rows:
        return set()
    c = confirmations.c
    query = (
        select(c.mailbox)
        .where(c.mailbox.in_({row.mailbox for row in rows}))
        .where(c.id.not_in([row.id for row in rows]))
        .where(c.state.in_([SENDING, SENT]))
        .where(c.attempted_at > since)
    )
    return set(conn.execute(query).scalars())


def _subscribers(conn: Connection, ids: Collection[int]) -> dict[int, Subscriber]:
    if not ids:
        return {}
    query = select(subscribers).where(subscribers.c.id.in_(list(ids)))
    return {row.id: to_subscriber(row) for row in conn.execute(query)}


def _choose(
    rows: Sequence[Any], people: Mapping[int, Subscriber], recent: set[str]
) -> tuple[list[Any], dict[str, list[int]]]:
    """Rows to send (newest per mailbox), and the others by why they are skipped."""
    chosen: list[Any] = []
    skipped: dict[str, list[int]] = {"not pending": [], "too soon": []}
    mailboxes = set(recent)
    for row in rows:  # newest first
        if people[row.subscriber_id].status is not SubscriberStatus.PENDING:
            skipped["not pending"].append(row.id)
        elif row.mailbox in mailboxes:
            skipped["too soon"].append(row.id)
        else:
            mailboxes.add(row.mailbox)
            chosen.append(row)
    return chosen, skipped


def _set(conn: Connection, ids: Sequence[int], **values: Any) -> None:
    if ids:
        conn.execute(
            update(confirmations).where(confirmations.c.id.in_(list(ids))).values(**values)
        )
