"""Sending digests through a real SMTP server on 127.0.0.1: every outcome ends in the
right state, nothing is lost and nothing is sent twice."""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feedsvc import config as config_module
from feedsvc.config import Config
from feedsvc.model import DeliveryState, ParsedEntry, ParsedFeed, SubscriberStatus
from feedsvc.newsletter.compose import subscriber_links
from feedsvc.newsletter.deliver import Deliverer
from feedsvc.newsletter.mail import Mailer, OutboxMailer, create_mailer
from feedsvc.newsletter.tokens import Purpose, Tokens
from feedsvc.publish.regenerate import Publisher
from feedsvc.store import Store
from tests.smtpserver import Fault, SmtpServer

NOW = datetime(2026, 11, 28, 0, 30, tzinfo=UTC)  # 07:30 in Hà Nội, after the 07:00 digest
PERIOD = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)

CONFIG = """\
site:
  title: "Báo Hà Tĩnh — Bản tin"
  base_url: "https://bantin.example.vn"
storage:
  url: "sqlite:///{db}"
sources:
  - id: xa-hoi
    url: "https://baohatinh.vn/rss/xa-hoi.rss"
    categories: [xa-hoi]
categories:
  - id: xa-hoi
    title: "Xã hội"
  - id: kinh-te
    title: "Kinh tế"
newsletter:
  from: "Bản tin Hà Tĩnh <bantin@example.vn>"
mail:
  backend: {backend}
  smtp:
    host: 127.0.0.1
    port: {port}
    starttls: false
  concurrency: 2
  rate_per_second: 1000
  retry_delay: 10ms
  max_attempts: 3
"""


def make_config(tmp_path: Path, backend: str = "smtp", port: int = 25) -> Config:
    path = tmp_path / "config.yaml"
    text = CONFIG.format(db=tmp_path / "feedsvc.db", backend=backend, port=port)
    path.write_text(text, encoding="utf-8")
    return config_module.load(path)


def store_news(config: Config, store: Store, count: int = 3) -> None:
    """Entries first seen during the day before the 07:00 digest, filed under xa-hoi."""
    seen = PERIOD - timedelta(hours=2)
    store.sources.sync([("xa-hoi", "https://baohatinh.vn/rss/xa-hoi.rss")], seen)
    [source] = store.sources.list()
    items = tuple(
        ParsedEntry(
            identity=f"https://baohatinh.vn/tin-{n}.html",
            title=f"Tin {n}: trẻ em Hà Tĩnh đến trường",
            link=f"https://baohatinh.vn/tin-{n}.html",
            summary="Sáng 27/11, hơn 300 học sinh…",
            published=seen - timedelta(minutes=n),
            content_hash=f"h{n}",
        )
        for n in range(count)
    )
    outcome = store.entries.apply(source, ParsedFeed("Báo", None, items), {}, seen)
    Publisher(config, store).file(list(outcome.new_ids))


def subscribe(store: Store, address: str, categories: tuple[str, ...] = ("xa-hoi",)) -> int:
    subscriber, _ = store.subscribers.add(
        address,
        categories=categories,
        schedule="daily",
        locale="vi",
        timezone="Asia/Ho_Chi_Minh",
        confirmed=True,
        now=PERIOD - timedelta(days=5),
    )
    return subscriber.id


def clock_from(start: datetime) -> Callable[[], datetime]:
    """A clock that starts at ``start`` and runs at real speed (retries fall due)."""
    began = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - began)


def deliverer(config: Config, store: Store, mailer: Mailer, start: datetime = NOW) -> Deliverer:
    links = subscriber_links(config, Tokens("test-secret-key-0123456789"))
    return Deliverer(config, store, mailer, links=links, clock=clock_from(start))


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    async with SmtpServer() as server:
        yield server


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'feedsvc.db'}")
    yield opened
    opened.close()


async def test_each_smtp_outcome_ends_in_the_right_state(
    tmp_path: Path, smtp: SmtpServer, store: Store
) -> None:
    config = make_config(tmp_path, port=smtp.port)
    store_news(config, store)
    ids = {
        name: subscribe(store, f"{name}@example.vn")
        for name in ("ok", "later", "closing", "reject", "unknown", "after")
    }
    quiet = subscribe(store, "quiet@example.vn", ("kinh-te",))  # nothing new in kinh-te
    smtp.script(Fault.TRY_LATER_AT_DATA, recipient="later@example.vn", times=1)
    smtp.script(Fault.CLOSING_AT_RCPT, recipient="closing@example.vn", times=1)
    smtp.script(Fault.REJECT_AT_RCPT, recipient="reject@example.vn")
    smtp.script(Fault.DROP_BEFORE_REPLY, recipient="unknown@example.vn")
    smtp.script(Fault.DROP_AFTER_ACCEPT, recipient="after@example.vn", times=1)
    mailer = create_mailer(config)
    sender = deliverer(config, store, mailer)
    plan = sender.plan("daily")
    assert (plan.period, plan.subscribers, plan.created) == (PERIOD, 7, 7)
    summary = await sender.send("daily", wait=timedelta(seconds=5))
    await mailer.close()
    assert summary.states == {"sent": 4, "failed": 1, "unknown": 1, "empty": 1}
    assert dict(smtp.recipients) == {
        "ok@example.vn": 1,
        "later@example.vn": 1,  # 451 once, then sent
        "closing@example.vn": 1,  # 421 once, then sent on a new connection
        "after@example.vn": 1,  # the drop after its 250 did not cause a resend
    }
    bounced = store.subscribers.get(ids["reject"])
    assert bounced is not None
    assert bounced.bounce_count == 1
    assert store.subscribers.get(quiet) is not None
    again = deliverer(config, store, create_mailer(config))
    assert again.plan("daily").created == 0  # the period exists: nothing planned twice
    assert (await again.send("daily")).states == {}
    assert sum(smtp.recipients.values()) == 4


async def test_the_digest_message_and_its_links(tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path, backend="outbox")
    store_news(config, store, count=12)
    subscriber_id = subscribe(store, "an@example.vn")
    mailer = create_mailer(config)
    sender = deliverer(config, store, mailer)
    sender.plan("daily")
    assert (await sender.send("daily")).states == {"sent": 1}
    [message] = OutboxMailer(config.outbox_path).messages()
    assert message["To"] == "an@example.vn"
    assert message["Subject"].startswith("Bản tin Hà Tĩnh — 28/11: Xã hội (12 tin mới)")
    assert message["Message-ID"] == f"<digest.daily.20261128T0000Z.{subscriber_id}@example.vn>"
    unsubscribe = message["List-Unsubscribe"]
    assert unsubscribe.startswith("<https://bantin.example.vn/unsubscribe/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = unsubscribe.split("/unsubscribe/")[1].split(">")[0]
    tokens = Tokens("test-secret-key-0123456789")
    reader = store.subscribers.get(subscriber_id)
    assert reader is not None
    assert tokens.read(Purpose.UNSUBSCRIBE, token).key == reader.key
    text = message.get_body(("plain",)).get_content()
    assert text.count("Tin ") >= 10  # max_items_per_category, then "and 2 more"
    assert "an@example.vn" not in message["List-Unsubscribe"]  # tokens carry keys only


async def test_pending_and_unsubscribed_get_nothing(tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path, backend="outbox")
    store_news(config, store)
    pending, _ = store.subscribers.add(
        "new@example.vn",
        categories=["xa-hoi"],
        schedule="daily",
        locale="en",
        timezone="UTC",
        confirmed=False,
        now=PERIOD,
    )
    gone = subscribe(store, "gone@example.vn")
    store.subscribers.update(gone, status=SubscriberStatus.UNSUBSCRIBED)
    sender = deliverer(config, store, create_mailer(config))
    assert sender.plan("daily").created == 0
    assert OutboxMailer(config.outbox_path).messages() == []
    assert pending.status is SubscriberStatus.PENDING


async def test_a_failed_digest_s_stories_come_in_the_next_one(
    tmp_path: Path, smtp: SmtpServer, store: Store
) -> None:
    config = make_config(tmp_path, port=smtp.port)
    store_news(config, store)
    subscribe(store, "flaky@example.vn")
    smtp.script(Fault.TRY_LATER_AT_RCPT, recipient="flaky@example.vn", times=3)
    first = deliverer(config, store, create_mailer(config))
    first.plan("daily")
    assert (await first.send("daily", wait=timedelta(seconds=5))).states == {"failed": 1}
    second = deliverer(config, store, create_mailer(config), start=NOW + timedelta(days=1))
    second.plan("daily")
    assert (await second.send("daily")).states == {"sent": 1}
    [received] = smtp.received("flaky@example.vn")
    parsed = email.message_from_bytes(received.data, policy=email.policy.default)
    assert "(3 tin mới)" in str(parsed["Subject"])  # yesterday's stories were not lost
    counts = store.deliveries.counts("daily")
    assert counts == {DeliveryState.FAILED.value: 1, DeliveryState.SENT.value: 1}
