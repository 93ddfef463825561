"""Subscribers: the people who receive digests. They live here, never in config.yaml.

Each has a random ``key`` that its links name (newsletter.tokens). Ids are never
reused (AUTOINCREMENT on SQLite), and neither are keys: a removed subscriber's
links name nobody, ever.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Text, and_, cast, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from feedsvc.model import Subscriber, SubscriberStatus
from feedsvc.store.engine import insert, reading, writing
from feedsvc.store.schema import bounce_reports, deliveries, delivery_tallies, subscribers

BOUNCE_LIMIT = 3
"""Permanent failures after which a subscriber is marked bounced (``mail.bounce_limit``)."""
PAGE = 50
"""Subscribers per page of a search (the console)."""
COUNT_CAP = 10_000
"""A search counts its matches up to this many; beyond, "more than COUNT_CAP"."""
_TALLIED = ("sent", "failed", "unknown", "empty", "bounced")
"""Delivery states whose counts outlive a deleted subscriber: what happened to a period."""


@dataclass(frozen=True, slots=True)
class SubscriberQuery:
    """A search of the subscribers, newest first; ``after`` is the keyset cursor (an id).

    ``text`` is folded: a whole address finds itself caselessly and every address of
    its canonical mailbox (``Nguyen.An+tin@GMAIL.com`` finds ``nguyenan@gmail.com``);
    a piece of one finds the addresses, or mailboxes, that contain it caselessly.
    """

    text: str = ""
    status: SubscriberStatus | None = None
    schedule: str | None = None
    category: str | None = None
    after: int | None = None
    limit: int = PAGE


@dataclass(frozen=True, slots=True)
class SubscriberPage:
    subscribers: list[Subscriber]
    total: int  # matching the query, every page (at most COUNT_CAP + 1)
    next_after: int | None  # the cursor of the next page; None on the last one

    @property
    def more_than(self) -> int | None:
        """COUNT_CAP when the matches were not all counted."""
        return COUNT_CAP if self.total > COUNT_CAP else None


DOTLESS_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}
"""Domains known to ignore dots in the local part; elsewhere a dot may make another mailbox."""


def email_key(email: str) -> str:
    """What makes two addresses the same subscriber: the whole address, caseless."""
    return email.casefold()


def canonical_mailbox(email: str) -> str:
    """The mailbox an address delivers to, as far as we can tell: what limits count and
    what the console's search folds to.

    Lower-cased, without a ``+tag`` (every large provider delivers ``a+x@`` to
    ``a@``), and for Gmail without dots. Two addresses that differ otherwise are
    two mailboxes; treating more of them as one would only make limits stricter.
    """
    local, _, domain = email.rpartition("@")
    local, domain = local.split("+", 1)[0].casefold(), domain.casefold()
    if domain in DOTLESS_DOMAINS:
        local, domain = local.replace(".", ""), DOTLESS_DOMAINS[domain]
    return f"{local}@{domain}"


def address_columns(email: str) -> dict[str, str]:
    """The columns derived from an address, written with it on every insert."""
    return {"email": email, "email_key": email_key(email), "mailbox": canonical_mailbox(email)}


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
        topics=tuple(row.topics or ()),
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
        topics: Sequence[str] = (),
    ) -> tuple[Subscriber, bool]:
        """Add ``email`` (already normalized), active or pending; see :meth:`insert`."""
        return self.insert(
            email,
            categories=categories,
            topics=topics,
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
        topics: Sequence[str] = (),
    ) -> tuple[Subscriber, bool]:
        """Add ``email`` with a fresh key; return it and whether it was new.

        An address that is already here is returned unchanged: adding it twice
        must neither reveal nor reset anything.
        """
        values = {
            **address_columns(email),
            "status": status.value,
            "categories": list(categories),
            "topics": list(topics),
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
        for name in ("categories", "topics"):
            if name in values:
                values[name] = list(values[name])
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

    def erase(self, subscriber_id: int) -> bool:
        """Delete the subscriber, its tokens and deliveries, keeping only anonymous counts.

        What its deliveries counted per (schedule, period, edition, state) is added to
        ``delivery_tallies`` in the same transaction; reports that came back about it
        forget its address. False if there was no such subscriber.
        """
        with writing(self._engine) as conn:
            _tally(conn, subscriber_id)
            conn.execute(
                update(bounce_reports)
                .where(bounce_reports.c.subscriber_id == subscriber_id)
                .values(recipients=[])
            )
            result = conn.execute(delete(subscribers).where(subscribers.c.id == subscriber_id))
        return bool(result.rowcount)

    def search(self, query: SubscriberQuery) -> SubscriberPage:
        """One page of the subscribers matching ``query`` and how many match in all."""
        conditions = _matching(query)
        page = select(subscribers).where(*conditions).order_by(subscribers.c.id.desc())
        if query.after is not None:
            page = page.where(subscribers.c.id < query.after)
        # Counting stops past COUNT_CAP: a filter that matches most of 100,000 rows would
        # otherwise read them all for a number nobody needs exactly.
        capped = select(subscribers.c.id).where(*conditions).limit(COUNT_CAP + 1).subquery()
        total = select(func.count()).select_from(capped)
        with reading(self._engine) as conn:
            rows = [to_subscriber(row) for row in conn.execute(page.limit(query.limit + 1))]
            more = len(rows) > query.limit
            if query.after is None and not more:
                count = len(rows)  # all of them: a search for one address reads once
            else:
                count = int(conn.execute(total).scalar_one())
        rows = rows[: query.limit]
        return SubscriberPage(rows, count, rows[-1].id if more else None)

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


def _matching(query: SubscriberQuery) -> list[Any]:
    conditions: list[Any] = []
    text = query.text.strip()
    local, at, domain = text.rpartition("@")
    if local and at and "." in domain:  # a whole address: two indexed lookups
        exact = subscribers.c.email_key == email_key(text)
        conditions.append(exact | (subscribers.c.mailbox == canonical_mailbox(text)))
    elif text:  # a piece of an address, also of a mailbox (without its +tag)
        pattern = "%" + _escape_like(email_key(text)) + "%"
        piece = "%" + _escape_like(email_key(text).split("+", 1)[0]) + "%"
        conditions.append(
            subscribers.c.email_key.like(pattern, escape="\\")
            | subscribers.c.mailbox.like(piece, escape="\\")
        )
    if query.status is not None:
        conditions.append(subscribers.c.status == query.status.value)
    if query.schedule is not None:
        conditions.append(subscribers.c.schedule == query.schedule)
    if query.category is not None:  # a JSON array of slugs: '"id"' appears in its text
        as_text = cast(subscribers.c.categories, Text)
        conditions.append(as_text.like(f'%"{_escape_like(query.category)}"%', escape="\\"))
    return conditions


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _tally(conn: Connection, subscriber_id: int) -> None:
    """Add the subscriber's finished deliveries to the anonymous counts."""
    edition = func.coalesce(deliveries.c.edition, "")
    counted = conn.execute(
        select(
            deliveries.c.schedule, deliveries.c.period, edition, deliveries.c.state, func.count()
        )
        .where(and_(deliveries.c.subscriber_id == subscriber_id, deliveries.c.state.in_(_TALLIED)))
        .group_by(deliveries.c.schedule, deliveries.c.period, edition, deliveries.c.state)
    ).all()
    if not counted:
        return
    statement = insert(conn, delivery_tallies)
    statement = statement.on_conflict_do_update(
        index_elements=["schedule", "period", "edition", "state"],
        set_={"count": delivery_tallies.c.count + statement.excluded.count},
    )
    conn.execute(
        statement,
        [
            {"schedule": s, "period": p, "edition": e, "state": state, "count": n}
            for s, p, e, state, n in counted
        ],
    )
