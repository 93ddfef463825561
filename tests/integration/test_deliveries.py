"""Subscribers and deliveries in the store, on SQLite and PostgreSQL: the parts of
exactly-once delivery that the database guarantees."""

from __future__ import annotations

import threading
from datetime import timedelta

import sqlalchemy as sa

from feedsvc.model import DeliveryOutcome, DeliveryState, SubscriberStatus
from feedsvc.newsletter.window import Window, next_window
from feedsvc.store import Store
from feedsvc.store.schema import deliveries
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
    assert store.deliveries.retry("p", first.id, "451 try later", NOW + timedelta(minutes=1))
    assert store.deliveries.finish("p", second.id, DeliveryState.SENT, NOW)
    assert store.deliveries.claim("p", NOW + timedelta(seconds=30), LEASE) == []
    assert store.deliveries.next_attempt() == NOW + timedelta(minutes=1)
    [again] = store.deliveries.claim("p", NOW + timedelta(minutes=1), LEASE)
    assert again.id == first.id
    store.deliveries.finish("p", again.id, DeliveryState.UNKNOWN, NOW, "dropped after DATA")
    assert store.deliveries.claim("p", NOW + timedelta(days=1), LEASE) == []
    assert store.deliveries.counts() == {"sent": 1, "unknown": 1}


def test_an_outcome_is_recorded_only_under_the_lease_that_sent_it(store: Store) -> None:
    plan(store, add(store, "a@example.vn"))
    [slow] = store.deliveries.claim("p1", NOW, LEASE)
    [taken] = store.deliveries.claim("p2", NOW + LEASE * 2, LEASE)  # p1 stalled past its lease
    assert taken.id == slow.id
    assert not store.deliveries.finish("p1", slow.id, DeliveryState.SENT, NOW + LEASE * 2)
    assert not store.deliveries.retry("p1", slow.id, "451", NOW + LEASE * 3)
    assert store.deliveries.counts() == {"sending": 1}  # still p2's to finish
    assert store.deliveries.finish("p2", taken.id, DeliveryState.SENT, NOW + LEASE * 2)
    assert store.deliveries.counts() == {"sent": 1}


def test_outcomes_committed_together_keep_each_their_own_time_edition_and_state(
    store: Store,
) -> None:
    plan(store, *(add(store, f"{n}@example.vn") for n in range(5)))
    mine = store.deliveries.claim("p1", NOW, LEASE, limit=4)
    [lost] = store.deliveries.claim("p2", NOW, LEASE)  # another process's row
    at = [NOW + timedelta(seconds=n, microseconds=n) for n in range(5)]
    outcomes = [
        DeliveryOutcome(mine[0].id, DeliveryState.SENT, at[0], None, "edition-a"),
        DeliveryOutcome(mine[1].id, DeliveryState.SENT, at[1], None, "edition-b"),
        DeliveryOutcome(mine[2].id, DeliveryState.FAILED, at[2], "550 no such user"),
        DeliveryOutcome(mine[3].id, DeliveryState.SENT, at[3], None, "edition-a"),
        DeliveryOutcome(lost.id, DeliveryState.SENT, at[4], None, "edition-c"),
    ]
    assert store.deliveries.finish_many("p1", outcomes) == {d.id for d in mine}
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                deliveries.c.id,
                deliveries.c.state,
                deliveries.c.sent_at,
                deliveries.c.edition,
                deliveries.c.last_error,
                deliveries.c.lease_owner,
            ).order_by(deliveries.c.id)
        ).all()
    assert [tuple(row) for row in rows] == [
        (mine[0].id, "sent", at[0], "edition-a", None, None),
        (mine[1].id, "sent", at[1], "edition-b", None, None),
        (mine[2].id, "failed", None, None, "550 no such user", None),
        (mine[3].id, "sent", at[3], "edition-a", None, None),
        (lost.id, "sending", None, None, None, "p2"),
    ]


def test_a_process_never_claims_again_a_row_it_is_still_sending(store: Store) -> None:
    plan(store, add(store, "a@example.vn"))
    [claimed] = store.deliveries.claim("p1", NOW, LEASE)
    assert store.deliveries.claim("p1", NOW + LEASE * 2, LEASE) == []  # expired, but its own
    assert store.deliveries.renew("p1", [claimed.id], NOW + LEASE * 3) == [claimed.id]
    assert store.deliveries.claim("p2", NOW + LEASE * 2, LEASE) == []  # renewed: still held
    assert store.deliveries.renew("p2", [claimed.id], NOW + LEASE * 3) == []  # not p2's


def test_a_dead_owners_leases_are_taken_over_before_they_expire(store: Store) -> None:
    plan(store, add(store, "a@example.vn"), add(store, "b@example.vn"))
    store.deliveries.claim("dead", NOW, LEASE, limit=1)
    store.deliveries.claim("alive", NOW, LEASE, limit=1)
    holders = {h.owner: (h.count, h.until) for h in store.deliveries.holders(NOW)}
    assert holders == {"dead": (1, NOW + LEASE), "alive": (1, NOW + LEASE)}
    [taken] = store.deliveries.claim("p", NOW, LEASE, take_over=["dead"])
    assert taken.attempts == 2
    assert {h.owner for h in store.deliveries.holders(NOW)} == {"alive", "p"}


def test_the_next_window_starts_where_the_last_delivered_one_ended(store: Store) -> None:
    ok, failed, busy = add(store, "a@example.vn"), add(store, "b@example.vn"), add(store, "c@x.vn")
    plan(store, ok, failed, busy)
    for delivery in store.deliveries.claim("p", NOW, LEASE):
        if delivery.subscriber_id != busy:
            state = DeliveryState.SENT if delivery.subscriber_id == ok else DeliveryState.FAILED
            store.deliveries.finish("p", delivery.id, state, NOW)
    histories = store.deliveries.histories("daily")
    later = PERIOD + timedelta(days=1)
    windows = {i: next_window(histories.get(i), PERIOD, later) for i in (ok, failed, busy)}
    assert windows == {
        ok: Window(PERIOD, later),
        # The failed one's next digest starts where this one did: its entries come again.
        failed: Window(PERIOD - timedelta(days=1), later),
        busy: None,  # still sending: a next window now would overlap it
    }


def test_three_bounces_mark_a_subscriber_bounced(store: Store) -> None:
    subscriber_id = add(store, "gone@example.vn")
    for _ in range(3):
        store.subscribers.record_bounce(subscriber_id)
    bounced = store.subscribers.get(subscriber_id)
    assert bounced is not None
    assert (bounced.status, bounced.bounce_count) == (SubscriberStatus.BOUNCED, 3)
