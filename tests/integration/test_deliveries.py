"""Subscribers and deliveries in the store, on SQLite and PostgreSQL: the parts of
exactly-once delivery that the database guarantees."""

from __future__ import annotations

import threading
from datetime import timedelta

from feedsvc.model import DeliveryState, SubscriberStatus
from feedsvc.store import Store
from tests.conftest import NOW

PERIOD = NOW
LEASE = timedelta(minutes=2)


def add(store: Store, email: str, confirmed: bool = True) -> int:
    subscriber, _ = store.subscribers.add(
        email,
        categories=["xa-hoi"],
        schedule="daily",
        locale="vi",
        timezone="Asia/Ho_Chi_Minh",
        confirmed=confirmed,
        now=NOW,
    )
    return subscriber.id


def plan(store: Store, *ids: int) -> int:
    windows = [(i, PERIOD - timedelta(days=1), PERIOD, f"<{i}@example.vn>") for i in ids]
    return store.deliveries.create("daily", PERIOD, windows, NOW)


def test_addresses_are_unique_whatever_their_case(store: Store) -> None:
    first, created = store.subscribers.add(
        "An.Nguyen@baohatinh.vn",
        categories=["xa-hoi"],
        schedule="daily",
        locale="vi",
        timezone="Asia/Ho_Chi_Minh",
        confirmed=False,
        now=NOW,
    )
    again, created_again = store.subscribers.add(
        "an.nguyen@BAOHATINH.vn",
        categories=["tre-em"],
        schedule="weekly",
        locale="en",
        timezone="UTC",
        confirmed=True,
        now=NOW,
    )
    assert (created, created_again) == (True, False)
    assert again == first  # unchanged: signing up twice resets nothing
    assert first.status is SubscriberStatus.PENDING


def test_each_period_is_planned_once_even_by_racing_processes(store: Store) -> None:
    ids = [add(store, f"reader{i}@example.vn") for i in range(30)]
    created: list[int] = []
    threads = [threading.Thread(target=lambda: created.append(plan(store, *ids))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(created) == 30
    assert store.deliveries.counts() == {"pending": 30}


def test_a_claimed_delivery_is_not_claimed_again_until_its_lease_expires(store: Store) -> None:
    plan(store, add(store, "a@example.vn"))
    [claimed] = store.deliveries.claim("p1", NOW, LEASE)
    assert (claimed.state, claimed.attempts) == (DeliveryState.SENDING, 1)
    assert store.deliveries.claim("p2", NOW, LEASE) == []
    [taken_over] = store.deliveries.claim("p2", NOW + LEASE * 2, LEASE)  # p1 died mid-send
    assert (taken_over.id, taken_over.message_id, taken_over.attempts) == (
        claimed.id,
        claimed.message_id,
        2,
    )


def test_retry_waits_and_closed_states_are_never_claimed(store: Store) -> None:
    plan(store, add(store, "a@example.vn"), add(store, "b@example.vn"))
    first, second = store.deliveries.claim("p", NOW, LEASE)
    store.deliveries.retry(first.id, "451 try later", NOW + timedelta(minutes=1))
    store.deliveries.finish(second.id, DeliveryState.SENT, NOW)
    assert store.deliveries.claim("p", NOW + timedelta(seconds=30), LEASE) == []
    assert store.deliveries.next_attempt() == NOW + timedelta(minutes=1)
    [again] = store.deliveries.claim("p", NOW + timedelta(minutes=1), LEASE)
    assert again.id == first.id
    store.deliveries.finish(again.id, DeliveryState.UNKNOWN, NOW, "dropped after DATA")
    assert store.deliveries.claim("p", NOW + timedelta(days=1), LEASE) == []
    assert store.deliveries.counts() == {"sent": 1, "unknown": 1}


def test_the_next_window_starts_where_the_last_delivered_one_ended(store: Store) -> None:
    ok, failed = add(store, "a@example.vn"), add(store, "b@example.vn")
    plan(store, ok, failed)
    for delivery in store.deliveries.claim("p", NOW, LEASE):
        state = DeliveryState.SENT if delivery.subscriber_id == ok else DeliveryState.FAILED
        store.deliveries.finish(delivery.id, state, NOW)
    # The failed one's next digest starts where this one did: its entries come again.
    assert store.deliveries.last_until("daily") == {ok: PERIOD, failed: PERIOD - timedelta(days=1)}


def test_three_bounces_mark_a_subscriber_bounced(store: Store) -> None:
    subscriber_id = add(store, "gone@example.vn")
    for _ in range(3):
        store.subscribers.record_bounce(subscriber_id)
    bounced = store.subscribers.get(subscriber_id)
    assert bounced is not None
    assert (bounced.status, bounced.bounce_count) == (SubscriberStatus.BOUNCED, 3)
