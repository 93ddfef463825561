"""Subscribers: the people who receive digests. They live here, never in config.yaml.

Each has a random ``key`` that its links name (newsletter.tokens). Ids are never
reused (AUTOINCREMENT on SQLite), and neither are keys: a removed subscriber's
links name nobody, ever.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from feedsvc.model import Subscriber, SubscriberStatus
from feedsvc.store.engine import reading, writing
from feedsvc.store.schema import subscribers

BOUNCE_LIMIT = 3
"""Permanent failures after which a subscriber is marked bounced (``mail.bounce_limit``)."""


def email_key(email: str) -> str:
    """What makes two addresses the same subscriber: the whole address, caseless."""
    return email.casefold()


def new_key() -> str:
    """A fresh link key: 128 random bits, 22 URL-safe characters."""
    return secrets.token_urlsafe(16)


def to_subscriber(row: Any) -> Subscriber:
    return Subscriber(
        id=row.id,
        email=row.email,
        status=SubscriberStatus(row.status),
        categories=tuple(row.categories),
        schedule=row.schedule,
        locale=row.locale,
        timezone=row.timezone,
        created_at=row.created_at,
        confirmed_at=row.confirmed_at,
        bounce_count=row.bounce_count,
        key=row.key,
    )


class SubscriberStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(
        self,
        email: str,
        *,
        categories: Sequence[str],
        schedule: str,
        locale: str,
        timezone: str,
        confirmed: bool,
        now: datetime,
    ) -> tuple[Subscriber, bool]:
        """Add ``email`` (already normalized), active or pending; see :meth:`insert`."""
        return self.insert(
            email,
            categories=categories,
            schedule=schedule,
            locale=locale,
            timezone=timezone,
            status=SubscriberStatus.ACTIVE if confirmed else SubscriberStatus.PENDING,
            created_at=now,
            confirmed_at=now if confirmed else None,
        )

    def insert(
        self,
        email: str,
        *,
        categories: Sequence[str],
        schedule: str,
        locale: str,
        timezone: str,
        status: SubscriberStatus,
        created_at: datetime,
        confirmed_at: datetime | None,
    ) -> tuple[Subscriber, bool]:
        """Add ``email`` with a fresh key; return it and whether it was new.

        An address that is already here is returned unchanged: adding it twice
        must neither reveal nor reset anything.
        """
        values = {
            "email": email,
            "email_key": email_key(email),
            "status": status.value,
            "categories": list(categories),
            "schedule": schedule,
            "locale": locale,
            "timezone": timezone,
            "created_at": created_at,
            "confirmed_at": confirmed_at,
            "bounce_count": 0,
            "key": new_key(),
        }
        try:
            with writing(self._engine) as conn:
                row = conn.execute(
                    select(subscribers).where(subscribers.c.email_key == values["email_key"])
                ).first()
                if row is not None:
                    return to_subscriber(row), False
                row = conn.execute(
                    subscribers.insert().values(**values).returning(*subscribers.c)
                ).one()
        except IntegrityError:  # the same address was added at the same moment elsewhere
            existing = self.by_email(email)
            assert existing is not None
            return existing, False
        return to_subscriber(row), True

    def get(self, subscriber_id: int) -> Subscriber | None:
        with reading(self._engine) as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
        return to_subscriber(row) if row else None

    def by_key(self, key: str) -> Subscriber | None:
        """The subscriber whose links carry ``key``; None once it was removed or rotated."""
        with reading(self._engine) as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.key == key)).first()
        return to_subscriber(row) if row else None

    def many(self, ids: Sequence[int]) -> dict[int, Subscriber]:
        """The subscribers with these ids (one query for a batch of deliveries)."""
        with reading(self._engine) as conn:
            rows = conn.execute(select(subscribers).where(subscribers.c.id.in_(list(ids))))
            return {row.id: to_subscriber(row) for row in rows}

    def by_email(self, email: str) -> Subscriber | None:
        with reading(self._engine) as conn:
            query = select(subscribers).where(subscribers.c.email_key == email_key(email))
            row = conn.execute(query).first()
        return to_subscriber(row) if row else None

    def list(
        self, *, schedule: str | None = None, status: SubscriberStatus | None = None
    ) -> list[Subscriber]:
        query = select(subscribers).order_by(subscribers.c.id)
        if schedule is not None:
            query = query.where(subscribers.c.schedule == schedule)
        if status is not None:
            query = query.where(subscribers.c.status == status.value)
        with reading(self._engine) as conn:
            return [to_subscriber(row) for row in conn.execute(query)]

    def update(self, subscriber_id: int, **values: Any) -> Subscriber | None:
        """Change columns (``status`` may be a SubscriberStatus); None if there is no such id."""
        if isinstance(values.get("status"), SubscriberStatus):
            values["status"] = values["status"].value
        if "categories" in values:
            values["categories"] = list(values["categories"])
        with writing(self._engine) as conn:
            row = conn.execute(
                update(subscribers)
                .where(subscribers.c.id == subscriber_id)
                .values(**values)
                .returning(*subscribers.c)
            ).first()
        return to_subscriber(row) if row else None

    def remove(self, email: str) -> bool:
        """Delete the subscriber and its delivery history; False if there was none."""
        with writing(self._engine) as conn:
            result = conn.execute(
                delete(subscribers).where(subscribers.c.email_key == email_key(email))
            )
        return bool(result.rowcount)

    def record_bounce(self, subscriber_id: int, limit: int = BOUNCE_LIMIT) -> None:
        """Count a permanent failure; the ``limit``-th one marks the subscriber bounced."""
        with writing(self._engine) as conn:
            count_bounce(conn, subscriber_id, limit)


def count_bounce(conn: Connection, subscriber_id: int, limit: int) -> bool:
    """Count one permanent failure inside the caller's transaction; True when it was the
    ``limit``-th and the subscriber is now bounced (no longer mailed)."""
    count = conn.execute(
        update(subscribers)
        .where(subscribers.c.id == subscriber_id)
        .values(bounce_count=subscribers.c.bounce_count + 1)
        .returning(subscribers.c.bounce_count)
    ).scalar_one_or_none()
    if count is None or count < limit:
        return False
    conn.execute(
        update(subscribers)
        .where(subscribers.c.id == subscriber_id)
        .values(status=SubscriberStatus.BOUNCED.value)
    )
    return True
