"""Exactly-once under slow relays and held leases, on SQLite and PostgreSQL: what
invariant 1 promises when nothing crashes, and the window rule behind it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from feedsvc import config as config_module
from feedsvc.config import Config
from feedsvc.model import DeliveryState
from feedsvc.newsletter.mail import OutboxMailer, create_mailer
from feedsvc.store import Store
from tests.integration.test_deliver import NOW, PERIOD, deliverer, store_news, subscribe
from tests.smtpserver import SmtpServer

READERS = 80
CONCURRENCY = 4


def config_for(tmp_path: Path, db_url: str, smtp_port: int, lease: str) -> Config:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""\
site:
  title: "Báo Hà Tĩnh — Bản tin"
  base_url: "https://bantin.example.vn"
storage:
  url: "{db_url}"
sources:
  - id: xa-hoi
    url: "https://baohatinh.vn/rss/xa-hoi.rss"
    categories: [xa-hoi]
categories:
  - id: xa-hoi
    title: "Xã hội"
newsletter:
  from: "Bản tin Hà Tĩnh <bantin@example.vn>"
mail:
  backend: smtp
  smtp: {{host: 127.0.0.1, port: {smtp_port}, starttls: false}}
  concurrency: {CONCURRENCY}
  rate_per_second: 1000
  lease: {lease}
""",
        encoding="utf-8",
    )
    return config_module.load(path)


async def test_a_slow_relay_never_gets_a_batch_twice(
    tmp_path: Path, db_url: str, store: Store
) -> None:
    """80 readers, mail.concurrency 4 and a relay taking 0.5 s per message: a batch
    takes 10 s against a 1.5 s lease, the shape of 12 s per message with the default
    2 m lease. The deliveries tick runs beside the send, in this process and in
    another one, as `feedsvc run` does; nobody may get two copies."""
    async with SmtpServer(delay=0.5) as smtp:
        config = config_for(tmp_path, db_url, smtp.port, lease="1500ms")
        store_news(config, store)
        for n in range(READERS):
            subscribe(store, f"reader{n}@example.vn")
        mailer = create_mailer(config)
        other_mailer = create_mailer(config)
        this = deliverer(config, store, mailer)
        other = deliverer(config, store, other_mailer)
        this.owner, other.owner = "web1:100:1:aaaa0000", "web2:100:1:bbbb0000"  # two processes
        this.plan("daily")
        digest_job = asyncio.create_task(this.send("daily"))
        while not digest_job.done():
            await asyncio.sleep(0.7)
            await asyncio.gather(this.send(), other.send())  # the 30 s deliveries ticks
        await digest_job
        await mailer.close()
        await other_mailer.close()
    assert dict(smtp.recipients) == {f"reader{n}@example.vn": 1 for n in range(READERS)}
    assert store.deliveries.counts() == {"sent": READERS}


def held_by_another_host(store: Store) -> list[int]:
    """Claim every due delivery for a process on another host (alive, as far as we know)."""
    claimed = store.deliveries.claim("elsewhere:4242:1:abcdef12", NOW, timedelta(hours=1))
    return [delivery.id for delivery in claimed]


async def test_no_period_is_planned_over_one_still_being_sent(
    tmp_path: Path, db_url: str, store: Store
) -> None:
    """A subscriber whose digest is still leased (a slow or dead process elsewhere) gets
    no next period meanwhile: its window would overlap, and the stories would come
    twice under two Message-IDs. The period after the held one closes starts where
    it ended."""
    config = config_for(tmp_path, db_url, 25, lease="2m")
    store_news(config, store)
    reader = subscribe(store, "an@example.vn")
    first = deliverer(config, store, create_mailer(config))
    assert first.plan("daily").created == 1
    [held] = held_by_another_host(store)

    tomorrow = deliverer(config, store, create_mailer(config), start=NOW + timedelta(days=1))
    plan = tomorrow.plan("daily")
    assert plan.created == 0  # nothing overlapping while yesterday's is in flight
    assert plan.waiting == 1

    store.deliveries.finish("elsewhere:4242:1:abcdef12", held, DeliveryState.SENT, NOW)
    later = deliverer(config, store, create_mailer(config), start=NOW + timedelta(days=2))
    assert later.plan("daily").created == 1
    windows = sorted(
        (delivery.since, delivery.until)
        for delivery in store.deliveries.claim("p", NOW + timedelta(days=2), timedelta(minutes=1))
        if delivery.subscriber_id == reader
    )
    assert windows == [(PERIOD, PERIOD + timedelta(days=2))]  # from where the sent one ended


async def test_a_message_that_cannot_be_built_fails_instead_of_staying_sending(
    tmp_path: Path, db_url: str, store: Store
) -> None:
    """A From that no message can carry (a config written around `feedsvc check`) fails
    the delivery with the reason instead of leaving it `sending`; the next digest, under
    a valid From, carries its stories."""
    config = config_for(tmp_path, db_url, 25, lease="2m")
    outbox = config.model_copy(
        update={"mail": config.mail.model_copy(update={"backend": "outbox"})}
    )
    bad = outbox.model_copy(
        update={"newsletter": config.newsletter.model_copy(update={"from_": "Bản tin <bad>"})}
    )
    store_news(config, store)
    subscribe(store, "an@example.vn")
    broken = deliverer(bad, store, create_mailer(bad))
    broken.plan("daily")
    assert (await broken.send("daily")).states == {"failed": 1}
    assert store.deliveries.counts() == {"failed": 1}

    fixed = deliverer(outbox, store, create_mailer(outbox), start=NOW + timedelta(days=1))
    fixed.plan("daily")
    assert (await fixed.send("daily")).states == {"sent": 1}
    [message] = OutboxMailer(outbox.outbox_path).messages()
    assert "(3 tin mới)" in str(message["Subject"])  # the failed one's stories, not lost
