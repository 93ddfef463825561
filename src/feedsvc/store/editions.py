"""Editions of the digests that went out, for "view in browser" and the public archive."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Text, cast, delete, exists, select

from feedsvc.model import TOPICS_SECTION, DeliveryState, Edition, EditionSection
from feedsvc.store.engine import insert, reading, writing
from feedsvc.store.schema import deliveries, delivery_tallies, editions


def to_edition(row: Any) -> Edition:
    return Edition(
        id=row.id,
        schedule=row.schedule,
        period=row.period,
        locale=row.locale,
        categories=tuple(row.categories),
        sections=tuple(
            EditionSection(item["category"], tuple(item["entries"]), item["more"])
            for item in row.sections
        ),
        created_at=row.created_at,
    )


class EditionStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def put(self, items: Iterable[Edition], now: datetime) -> None:
        """Keep these editions; one that exists already (another process) stays as it is."""
        rows = [
            {
                "id": edition.id,
                "schedule": edition.schedule,
                "period": edition.period,
                "locale": edition.locale,
                "categories": list(edition.categories),
                "sections": [
                    {"category": s.category_id, "entries": list(s.entry_ids), "more": s.more}
                    for s in edition.sections
                ],
                "created_at": now,
            }
            for edition in items
        ]
        if rows:
            with writing(self._engine) as conn:
                conn.execute(insert(conn, editions).on_conflict_do_nothing(), rows)

    def get(self, edition_id: str) -> Edition | None:
        """An edition that reached at least one reader (None otherwise: nothing to show)."""
        query = select(editions).where(editions.c.id == edition_id).where(went_out())
        with reading(self._engine) as conn:
            row = conn.execute(query).first()
        return to_edition(row) if row else None

    def archive(
        self, schedule: str | None = None, *, before: datetime | None = None, limit: int = 30
    ) -> list[Edition]:
        """Sent editions, newest period first; ``before`` a period, for the next page."""
        query = (
            select(editions)
            .where(went_out(), ~personal())
            .order_by(editions.c.period.desc(), editions.c.id)
            .limit(limit)
        )
        if schedule is not None:
            query = query.where(editions.c.schedule == schedule)
        if before is not None:
            query = query.where(editions.c.period < before)
        with reading(self._engine) as conn:
            return [to_edition(row) for row in conn.execute(query)]

    def purge(self, before: datetime) -> int:
        """Forget editions of periods before ``before`` (retention); returns how many."""
        with writing(self._engine) as conn:
            return conn.execute(delete(editions).where(editions.c.period < before)).rowcount or 0


def personal() -> Any:
    """Whether the edition has a "Your topics" section (``model.TOPICS_SECTION``): a
    condition on ``editions`` rows. Such editions are one reader's mix, each a variant of
    its own: they are not listed in the archive, only reached by their readers' links."""
    pattern = '%"' + TOPICS_SECTION.replace("_", "\\_") + '"%'
    return cast(editions.c.sections, Text).like(pattern, escape="\\")


def went_out() -> Any:
    """Whether the edition reached someone: a condition on ``editions`` rows."""
    states = [DeliveryState.SENT.value, DeliveryState.BOUNCED.value]
    # A digest that bounced later still went out: its edition stays published; and so
    # does one whose readers were all deleted since (their deliveries are counts now).
    return exists(
        select(deliveries.c.id)
        .where(deliveries.c.edition == editions.c.id)
        .where(deliveries.c.state.in_(states))
    ) | exists(
        select(delivery_tallies.c.count)
        .where(delivery_tallies.c.edition == editions.c.id)
        .where(delivery_tallies.c.state.in_(states))
    )
