"""The console's reads and rules on SQLite and PostgreSQL: the folded subscriber search with
its keyset pages, deleting a subscriber while keeping what its deliveries counted, sign-in
attempts limited across processes, and `feedsvc check` on the console's password hash."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from feedsvc import config as config_module
from feedsvc import preflight, signin
from feedsvc.model import DeliveryOutcome, DeliveryState, Edition, EditionSection, SubscriberStatus
from feedsvc.newsletter import consent
from feedsvc.newsletter.tokens import InvalidToken, Purpose, Tokens
from feedsvc.store import Store
from feedsvc.store.subscribers import SubscriberQuery
from tests.conftest import NOW

LEASE = timedelta(minutes=2)


def add(
    store: Store,
    email: str,
    *,
    status: str = "active",
    categories: tuple[str, ...] = ("xa-hoi",),
    schedule: str = "daily",
) -> int:
    subscriber, _ = store.subscribers.insert(
        email,
        categories=categories,
        schedule=schedule,
        locale="vi",
        timezone="Asia/Ho_Chi_Minh",
        status=SubscriberStatus(status),
        created_at=NOW,
        confirmed_at=NOW if status == "active" else None,
    )
    return subscriber.id


def emails(store: Store, **query: object) -> list[str]:
    page = store.subscribers.search(SubscriberQuery(**query))  # type: ignore[arg-type]
    return [s.email for s in page.subscribers]


def test_a_folded_search_finds_an_address_by_its_mailbox(store: Store) -> None:
    for n in range(300):
        add(store, f"ban.doc{n}@example.vn")
    add(store, "nguyen.van.an@gmail.com")
    add(store, "Tran.Thi.Binh@Example.VN")
    assert emails(store, text="NguyenVanAn+baohatinh@GMAIL.com") == ["nguyen.van.an@gmail.com"]
    assert emails(store, text="nguyenvanan") == ["nguyen.van.an@gmail.com"]
    assert emails(store, text="TRAN.thi") == ["Tran.Thi.Binh@Example.VN"]
    assert emails(store, text="ban.doc299@") == ["ban.doc299@example.vn"]
    assert emails(store, text="100%") == []  # LIKE's wildcards are literal
    assert emails(store, text="doc_1") == []


def test_keyset_pages_cover_every_match_once(store: Store) -> None:
    ids = [
        add(store, f"reader{n}@example.vn", status="pending" if n % 3 else "active")
        for n in range(130)
    ]
    seen: list[int] = []
    after = None
    while True:
        page = store.subscribers.search(
            SubscriberQuery(status=SubscriberStatus.PENDING, after=after)
        )
        assert page.total == 86
        seen += [s.id for s in page.subscribers]
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == sorted((i for n, i in enumerate(ids) if n % 3), reverse=True)


def test_filters_by_schedule_and_category(store: Store) -> None:
    add(store, "a@example.vn", categories=("xa-hoi", "kinh-te"), schedule="weekly")
    add(store, "b@example.vn", categories=("kinh-te-so",), schedule="weekly")
    add(store, "c@example.vn", categories=("kinh-te",))
    assert emails(store, category="kinh-te") == ["c@example.vn", "a@example.vn"]
    assert emails(store, category="kinh-te", schedule="weekly") == ["a@example.vn"]


def sent_period(store: Store, subscriber_ids: list[int], state: DeliveryState) -> Edition:
    edition = Edition("e" * 16, "daily", NOW, "vi", ("xa-hoi",), (EditionSection("xa-hoi", (1,)),))
    store.editions.put([edition], NOW)
    windows = [(sid, NOW - timedelta(days=1), NOW, f"<{sid}@x>") for sid in subscriber_ids]
    store.deliveries.create("daily", NOW, windows, NOW)
    claimed = store.deliveries.claim("sender:1", NOW, LEASE)
    outcomes = [DeliveryOutcome(d.id, state, NOW, edition=edition.id) for d in claimed]
    store.deliveries.finish_many("sender:1", outcomes)
    return edition


def test_deleting_a_subscriber_keeps_the_periods_counts_and_its_edition(
    store: Store, tmp_path: Path
) -> None:
    kept, gone = add(store, "con.lai@example.vn"), add(store, "se.xoa@example.vn")
    edition = sent_period(store, [kept, gone], DeliveryState.SENT)
    doomed = store.subscribers.get(gone)
    assert doomed is not None
    link = Tokens("k" * 32).subscriber_token(Purpose.UNSUBSCRIBE, doomed)

    assert consent.delete(store, doomed, origin="console") is consent.Outcome.DELETED

    assert store.subscribers.by_email("se.xoa@example.vn") is None
    with pytest.raises(InvalidToken):
        consent.linked(store, Tokens("k" * 32), Purpose.UNSUBSCRIBE, link)
    [report] = store.activity.periods()
    assert dict(report.counts) == {"sent": 2}
    assert [e.id for e in report.editions] == [edition.id]
    consent.delete(store, store.subscribers.get(kept), origin="console")  # type: ignore[arg-type]
    [report] = store.activity.periods()
    assert dict(report.counts) == {"sent": 2}
    assert store.editions.get(edition.id) is not None  # its web page stays


def test_sign_in_attempts_are_limited_across_processes(db_url: str) -> None:
    first, second = Store.open(db_url), Store.open(db_url)
    hashed = signin.hash_password("đúng mật khẩu")
    try:
        for n in range(signin.PER_CLIENT.count):
            either = (first, second)[n % 2]
            wrong = signin.sign_in(either, hashed, "sai", client="203.0.113.9", now=NOW)
            assert wrong.outcome is signin.Outcome.WRONG
        right = signin.sign_in(first, hashed, "đúng mật khẩu", client="203.0.113.9", now=NOW)
        assert right.outcome is signin.Outcome.LIMITED
        assert right.retry_at == NOW + signin.PER_CLIENT.window
        elsewhere = signin.sign_in(second, hashed, "đúng mật khẩu", client="198.51.100.7", now=NOW)
        assert elsewhere.outcome is signin.Outcome.SIGNED_IN
        later = NOW + signin.PER_CLIENT.window + timedelta(seconds=1)
        again = signin.sign_in(second, hashed, "đúng mật khẩu", client="203.0.113.9", now=later)
        assert again.outcome is signin.Outcome.SIGNED_IN
        assert again.token is not None
        who = signin.operator(first, hashed, again.token, later)
        assert who is not None
        signin.sign_out(first, who, client="203.0.113.9", now=later)
        assert signin.operator(second, hashed, again.token, later) is None
    finally:
        first.close()
        second.close()


def test_a_session_ends_with_its_lifetime_and_with_a_new_password(store: Store) -> None:
    hashed = signin.hash_password("mật khẩu")
    token = signin.sign_in(store, hashed, "mật khẩu", client="127.0.0.1", now=NOW).token
    assert token is not None
    assert signin.operator(store, hashed, token, NOW + timedelta(hours=1)) is not None
    assert signin.operator(store, hashed, token, NOW + signin.LIFETIME) is None
    other = signin.hash_password("mật khẩu")  # the same password, a new hash
    assert signin.operator(store, other, token, NOW + timedelta(hours=1)) is None


CONSOLE_ON = """\
site:
  title: "Bản tin thử"
  base_url: "https://bantin.example.vn"
http:
  port: 8080
  admin: true
"""


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, "is not set"),
        ("hunter2", "does not hold a password hash"),
    ],
)
def test_check_reports_the_console_without_a_password_hash(
    tmp_path: Path, value: str | None, problem: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONSOLE_ON, encoding="utf-8")
    config = config_module.load(path)
    environ = {} if value is None else {"FEEDSVC_ADMIN_PASSWORD_HASH": value}
    found = [f.text for f in preflight.inspect(config, environ, port=False) if not f.warning]
    assert found == [
        f"{path}:6: http.admin is true but $FEEDSVC_ADMIN_PASSWORD_HASH {problem}"
        + (" (make one with `feedsvc admin hash-password`)" if value else "")
    ]
    environ = {"FEEDSVC_ADMIN_PASSWORD_HASH": signin.hash_password("x")}
    assert [f for f in preflight.inspect(config, environ, port=False) if not f.warning] == []
