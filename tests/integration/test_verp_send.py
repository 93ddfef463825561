"""The sender's half of bounce matching: with a bounce mailbox configured, each digest's
envelope sender is its signed VERP address, and a report sent back to that address
marks exactly that delivery bounced."""

from __future__ import annotations

from pathlib import Path

from feedsvc import config as config_module
from feedsvc.newsletter.mail import create_mailer
from feedsvc.newsletter.reports import ReportProcessor
from feedsvc.store import Store
from tests.integration.test_deliver import deliverer, store_news, subscribe
from tests.smtpserver import SmtpServer

DATA = Path(__file__).parents[1] / "data" / "bounces"


async def test_a_digest_goes_out_under_its_verp_address_and_its_bounce_comes_home(
    tmp_path: Path, db_url: str, store: Store
) -> None:
    async with SmtpServer() as smtp:
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
  smtp: {{host: 127.0.0.1, port: {smtp.port}, starttls: false}}
  bounces: {{mailbox: "{tmp_path / "Maildir"}", address: "bounces@example.vn"}}
  bounce_limit: 1
""",
            encoding="utf-8",
        )
        config = config_module.load(path)
        store_news(config, store)
        reader = subscribe(store, "an.nguyen@gmail.com")
        mailer = create_mailer(config)
        sender = deliverer(config, store, mailer)
        sender.plan("daily")
        assert (await sender.send("daily")).states == {"sent": 1}
        await mailer.close()
    [received] = smtp.messages
    assert received.sender.startswith("bounces+")
    assert received.sender.endswith("@example.vn")
    token = received.sender.removeprefix("bounces+").split("@")[0]
    report = (DATA / "postfix-user-unknown.eml").read_bytes()
    report = report.replace(b"bounces+5-ebf4819e93ad7660d42e", f"bounces+{token}".encode())
    processed = ReportProcessor.from_config(config, store).process(report, "test")
    assert processed.outcome == "subscriber_bounced", processed  # bounce_limit: 1
    assert processed.match.by == "verp"
    assert store.deliveries.counts() == {"bounced": 1}
    gone = store.subscribers.get(reader)
    assert gone is not None
    assert gone.status.value == "bounced"  # bounce_limit: 1
