"""Consent in the store, on SQLite and PostgreSQL: ids and keys never reused, the queue."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from feedsvc import config as config_module
from feedsvc.config import Config
from feedsvc.model import SubscriberStatus
from feedsvc.newsletter import consent
from feedsvc.newsletter.roster import Signup
from feedsvc.store import Store, migrate
from tests.conftest import NOW

LEASE = timedelta(minutes=2)
SPACING = timedelta(minutes=1)
CONFIG = """\
site:
  title: "Bản tin"
  base_url: "http://127.0.0.1:8080"
categories:
  - id: xa-hoi
    title: "Xã hội"
newsletter:
  schedules:
    daily: "0 7 * * *"
"""


def config(tmp_path: Path) -> Config:
    return config_module.parse(CONFIG, tmp_path / "config.yaml")


def signup(email: str, schedule: str = "daily") -> Signup:
    return Signup(email, ("xa-hoi",), schedule, "vi")


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


def test_ids_and_keys_are_never_reused(store: Store) -> None:
    add(store, "mot@example.vn")
    add(store, "hai@example.vn")
    last = store.subscribers.by_email("hai@example.vn")
    assert last is not None
    store.subscribers.remove("hai@example.vn")
    add(store, "ba@example.vn")
    newest = store.subscribers.by_email("ba@example.vn")
    assert newest is not None
    assert newest.id > last.id  # SQLite gave the highest id out again without AUTOINCREMENT
    assert newest.key != last.key
    assert store.subscribers.by_key(last.key) is None
    assert len(newest.key) >= 22


def test_a_sign_up_does_the_same_statements_for_known_and_new(store: Store, tmp_path: Path) -> None:
    settings = config(tmp_path)
    add(store, "da.co@example.vn")
    statements: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement.split()[0])

    sa.event.listen(store.engine, "before_cursor_execute", record)
    try:
        known = consent.sign_up(settings, store, signup("da.co@example.vn"), origin="t", now=NOW)
        known_statements, statements[:] = list(statements), []
        new = consent.sign_up(settings, store, signup("chua.co@example.vn"), origin="t", now=NOW)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", record)
    assert (known.created, new.created) == (False, True)
    assert known_statements == statements
    assert known.subscriber.status is SubscriberStatus.ACTIVE  # a stranger changed nothing


def test_re_subscribing_is_a_new_sign_up_with_a_new_key(store: Store, tmp_path: Path) -> None:
    settings = config(tmp_path)
    first = consent.sign_up(settings, store, signup("quay.lai@example.vn"), origin="t", now=NOW)
    again = consent.sign_up(
        settings, store, signup("quay.lai@example.vn", "daily"), origin="t", now=NOW
    )
    assert again.subscriber.key == first.subscriber.key  # still pending: the same sign-up
    store.subscribers.update(first.subscriber.id, status=SubscriberStatus.UNSUBSCRIBED)
    back = consent.sign_up(settings, store, signup("quay.lai@example.vn"), origin="t", now=NOW)
    assert back.subscriber.status is SubscriberStatus.PENDING
    assert back.subscriber.key != first.subscriber.key
    assert back.subscriber.id == first.subscriber.id


def test_the_limit_counts_every_process_and_every_variant(db_url: str, tmp_path: Path) -> None:
    settings = config(tmp_path)
    stores = [Store.open(db_url), Store.open(db_url)]
    results: list[bool] = []
    lock = threading.Lock()

    def sign_up(n: int) -> None:
        email = f"muc.tieu+{n}@example.vn" if n % 2 else "Muc.Tieu@example.vn"
        try:
            consent.sign_up(settings, stores[n % 2], signup(email), origin="t", now=NOW)
        except consent.ConsentError:
            ok = False
        else:
            ok = True
        with lock:
            results.append(ok)

    try:
        threads = [threading.Thread(target=sign_up, args=(n,)) for n in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        later = NOW + timedelta(hours=1, seconds=1)
        consent.sign_up(settings, stores[0], signup("muc.tieu@example.vn"), origin="t", now=later)
    finally:
        for each in stores:
            each.close()
    assert sorted(results) == [False] * 7 + [True] * 5


def test_a_claim_sends_the_newest_row_per_mailbox_and_skips_the_rest(
    store: Store, tmp_path: Path
) -> None:
    settings = config(tmp_path)
    for email in ("a+1@example.vn", "a+2@example.vn", "b@example.vn"):
        consent.sign_up(settings, store, signup(email), origin="t", now=NOW)
    add(store, "active@example.vn")
    consent.sign_up(settings, store, signup("active@example.vn"), origin="t", now=NOW)
    claimed = store.confirmations.claim("p1", NOW, lease=LEASE, spacing=SPACING)
    assert sorted(c.subscriber.email for c in claimed) == ["a+2@example.vn", "b@example.vn"]
    assert store.confirmations.claim("p2", NOW, lease=LEASE, spacing=SPACING) == []
    for c in claimed:
        store.confirmations.finish(c.id, "p1", "sent", None)
    assert store.confirmations.states() == {"sent": 2, "skipped": 2}

    consent.resend(store, "a+1@example.vn", origin="t", now=NOW + timedelta(seconds=30))
    soon = store.confirmations.claim(
        "p1", NOW + timedelta(seconds=30), lease=LEASE, spacing=SPACING
    )
    assert soon == []  # a minute had not passed for that mailbox
    consent.resend(store, "a+1@example.vn", origin="t", now=NOW + timedelta(minutes=2))
    later = store.confirmations.claim(
        "p1", NOW + timedelta(minutes=2), lease=LEASE, spacing=SPACING
    )
    assert [c.subscriber.email for c in later] == ["a+1@example.vn"]


def test_a_dead_senders_rows_are_taken_over_and_outcomes_need_the_lease(
    store: Store, tmp_path: Path
) -> None:
    consent.sign_up(config(tmp_path), store, signup("cham@example.vn"), origin="t", now=NOW)
    [first] = store.confirmations.claim("dead", NOW, lease=LEASE, spacing=SPACING)
    after = NOW + LEASE + timedelta(seconds=1)
    [again] = store.confirmations.claim("alive", after, lease=LEASE, spacing=SPACING)
    assert (again.id, again.attempts) == (first.id, 2)
    store.confirmations.finish(first.id, "dead", "failed", "late")  # not its lease any more
    store.confirmations.finish(first.id, "alive", "sent", None)
    assert store.confirmations.outcomes([first.id]) == {first.id: ("sent", None)}


def test_upgrade_keeps_subscribers_and_their_deliveries(db_url: str) -> None:
    """0006 rebuilds the subscribers table on SQLite; nothing that points at it may go."""
    engine_store = Store.open(db_url, upgrade=False)
    engine = engine_store.engine
    try:
        migrate.upgrade(engine, "0005")
        with engine.begin() as conn:
            for n in (1, 2, 3):
                conn.execute(
                    sa.text(
                        "INSERT INTO subscribers (email, email_key, status, categories,"
                        " schedule, locale, timezone, created_at, bounce_count) VALUES"
                        " (:e, :e, 'active', '[\"xa-hoi\"]', 'daily', 'vi', 'UTC', :t, 0)"
                    ),
                    {"e": f"doc.gia{n}@example.vn", "t": NOW.replace(tzinfo=None)},
                )
                conn.execute(
                    sa.text(
                        "INSERT INTO deliveries (subscriber_id, schedule, period, since, until,"
                        " state, message_id, attempts, created_at)"
                        " SELECT id, 'daily', :t, :t, :t, 'sent', :m, 1, :t"
                        " FROM subscribers WHERE email = :e"
                    ),
                    {"e": f"doc.gia{n}@example.vn", "t": NOW, "m": f"<{n}@example.vn>"},
                )
        migrate.upgrade(engine)
        store = Store(engine)
        readers = store.subscribers.list()
        assert [s.email for s in readers] == [f"doc.gia{n}@example.vn" for n in (1, 2, 3)]
        assert len({s.key for s in readers}) == 3
        assert all(s.key for s in readers)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM deliveries")).scalar_one() == 3
        store.subscribers.remove("doc.gia3@example.vn")
        assert add(store, "moi@example.vn") > readers[-1].id  # never the removed id again
    finally:
        engine_store.close()
