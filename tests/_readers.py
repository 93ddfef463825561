"""Many subscribers at once, for the console's tests and benchmark: one executemany, not a
transaction per address (10,000 sign-ups one by one take longer than the test)."""

from __future__ import annotations

from datetime import datetime, timedelta

from feedsvc.model import SubscriberStatus
from feedsvc.store import Store
from feedsvc.store.engine import writing
from feedsvc.store.schema import subscribers
from feedsvc.store.subscribers import address_columns, new_key

STATUSES = (
    SubscriberStatus.ACTIVE,
    SubscriberStatus.ACTIVE,
    SubscriberStatus.ACTIVE,
    SubscriberStatus.PENDING,
    SubscriberStatus.UNSUBSCRIBED,
)


def add_many(store: Store, count: int, *, now: datetime, categories: list[str]) -> None:
    """``count`` subscribers ``doc.gia.{n}@example.vn``, mostly active, signed up over a year."""
    rows = []
    for n in range(count):
        status = STATUSES[n % len(STATUSES)]
        created = now - timedelta(minutes=(count - n) * 5)
        rows.append(
            {
                **address_columns(f"doc.gia.{n}@example.vn"),
                "key": new_key(),
                "status": status.value,
                "categories": categories[: 1 + n % len(categories)],
                "schedule": "daily" if n % 4 else "weekly",
                "locale": "vi" if n % 3 else "en",
                "timezone": "Asia/Ho_Chi_Minh",
                "created_at": created,
                "confirmed_at": created if status is not SubscriberStatus.PENDING else None,
                "bounce_count": 0,
            }
        )
    with writing(store.engine) as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(subscribers.insert(), rows[start : start + 5000])
