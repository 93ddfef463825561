"""The consent rules as pure functions: mailboxes, what a sign-up writes, imports, tokens."""

from __future__ import annotations

from dataclasses import replace

import pytest

from feedsvc.model import Subscriber, SubscriberStatus
from feedsvc.newsletter import consent
from feedsvc.newsletter.roster import Row, Signup
from feedsvc.newsletter.tokens import InvalidToken, Purpose, Tokens
from tests.conftest import NOW

STORED = Subscriber(
    id=7,
    email="ban.doc@example.vn",
    status=SubscriberStatus.ACTIVE,
    categories=("xa-hoi",),
    schedule="daily",
    locale="vi",
    timezone="Asia/Ho_Chi_Minh",
    created_at=NOW,
    confirmed_at=NOW,
    key="k" * 22,
)
ASKED = Signup("ban.doc@example.vn", ("tre-em",), "weekly", "en", topics=("đà nẵng",))


@pytest.mark.parametrize(
    ("address", "mailbox"),
    [
        ("Muc.Tieu+tin-moi@Example.VN", "muc.tieu@example.vn"),
        ("muc.tieu+0@example.vn", "muc.tieu@example.vn"),
        ("m.u.c.tieu+x@googlemail.com", "muctieu@gmail.com"),
        ("Muc.Tieu@gmail.com", "muctieu@gmail.com"),
        ("nguyễn@bảohàtĩnh.vn", "nguyễn@bảohàtĩnh.vn"),
    ],
)
def test_canonical_mailbox(address: str, mailbox: str) -> None:
    assert consent.canonical_mailbox(address) == mailbox


def test_the_queue_stores_a_hash_not_the_address() -> None:
    hashed = consent.mailbox_hash("muc.tieu+1@example.vn")
    assert hashed == consent.mailbox_hash("MUC.TIEU@example.vn")
    assert "muc" not in hashed
    assert len(hashed) == 64


@pytest.mark.parametrize("status", [SubscriberStatus.ACTIVE, SubscriberStatus.BOUNCED])
def test_a_sign_up_of_an_active_or_bounced_address_writes_back_what_was_there(
    status: SubscriberStatus,
) -> None:
    stored = replace(STORED, status=status)
    written = consent.after_sign_up(stored, ASKED, created=False)
    assert written == {
        "status": status,
        "categories": ("xa-hoi",),
        "schedule": "daily",
        "locale": "vi",
        "topics": (),
        "key": stored.key,
    }


def test_a_pending_address_takes_the_new_choices_and_keeps_its_sign_up() -> None:
    written = consent.after_sign_up(
        replace(STORED, status=SubscriberStatus.PENDING), ASKED, created=False
    )
    assert (written["categories"], written["schedule"], written["locale"]) == (
        ("tre-em",),
        "weekly",
        "en",
    )
    assert written["topics"] == ("đà nẵng",)
    assert written["key"] == STORED.key


def test_coming_back_after_unsubscribing_is_a_new_sign_up() -> None:
    written = consent.after_sign_up(
        replace(STORED, status=SubscriberStatus.UNSUBSCRIBED), ASKED, created=False
    )
    assert written["status"] is SubscriberStatus.PENDING
    assert written["key"] != STORED.key


@pytest.mark.parametrize(
    ("status", "confirmed_at", "confirmed", "expected"),
    [
        (SubscriberStatus.UNSUBSCRIBED, NOW, True, SubscriberStatus.UNSUBSCRIBED),
        (SubscriberStatus.BOUNCED, None, True, SubscriberStatus.BOUNCED),
        (SubscriberStatus.ACTIVE, NOW, False, SubscriberStatus.ACTIVE),
        (SubscriberStatus.ACTIVE, None, False, SubscriberStatus.PENDING),  # no record of it
        (SubscriberStatus.PENDING, None, True, SubscriberStatus.ACTIVE),
        (None, None, False, SubscriberStatus.PENDING),
        (None, None, True, SubscriberStatus.ACTIVE),
    ],
)
def test_imported_status(
    status: SubscriberStatus | None,
    confirmed_at: object,
    confirmed: bool,
    expected: SubscriberStatus,
) -> None:
    row = Row(ASKED, status, NOW, confirmed_at)  # type: ignore[arg-type]
    assert consent.imported_status(row, confirmed) is expected


def test_link_tokens_name_the_key_and_old_ones_the_id() -> None:
    tokens = Tokens(b"a-test-secret-of-some-length")
    ref = tokens.read(Purpose.UNSUBSCRIBE, tokens.subscriber_token(Purpose.UNSUBSCRIBE, STORED))
    assert (ref.key, ref.legacy_id) == (STORED.key, None)
    old = tokens.read(Purpose.UNSUBSCRIBE, tokens.dumps(Purpose.UNSUBSCRIBE, 7))
    assert (old.key, old.legacy_id) == (None, 7)
    with pytest.raises(InvalidToken):
        tokens.read(Purpose.UNSUBSCRIBE, tokens.dumps(Purpose.UNSUBSCRIBE, [7]))
    with pytest.raises(ValueError, match="no key"):
        tokens.subscriber_token(Purpose.UNSUBSCRIBE, replace(STORED, key=""))
