"""Alerts to the operators: a real feed server that breaks and mends, the real poller and
parser pool, real stores, the outbox (and, for two processes, a real SMTP server).

Time is a clock the test moves, so ``alerts.after`` can be ten minutes without a wait.
"""

from __future__ import annotations

import email.policy
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import aiohttp
import pytest

from feedsvc import config as config_module
from feedsvc.config import Config
from feedsvc.ingest.poll import Poller
from feedsvc.ingest.pool import parse_pool
from feedsvc.model import ParsedEntry, ParsedFeed
from feedsvc.newsletter.alerts import Alerter
from feedsvc.newsletter.mail import OutboxMailer
from feedsvc.store import Store
from feedsvc.web import status
from tests.feedserver import FeedServer
from tests.integration.conftest import SAMPLE_RSS
from tests.integration.test_observability import serving
from tests.smtpserver import ThreadedSmtpServer

T0 = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
OPERATORS = ("vanhanh@example.vn", "truc-ban@example.vn")

CONFIG = """\
site:
  title: "Báo Hà Tĩnh — Bản tin"
  base_url: "https://bantin.example.vn"
storage:
  url: "{db}"
fetch:
  allow_private_networks: true
  timeout: 5s
categories:
  - id: xa-hoi
    title: "Xã hội"
sources:
  - id: xa-hoi
    title: "Báo Hà Tĩnh — Xã hội"
    url: "{url}"
    categories: [xa-hoi]
newsletter:
  from: "Bản tin Hà Tĩnh <bantin@example.vn>"
mail:
{mail}
alerts:
  to: ["vanhanh@example.vn", "truc-ban@example.vn"]
  after: 10m
"""


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def at(self, minutes: float) -> None:
        self.now = T0 + timedelta(minutes=minutes)


def make_config(tmp_path: Path, db_url: str, url: str, mail: str = "") -> Config:
    mail = mail or f"  backend: outbox\n  outbox_dir: {tmp_path / 'outbox'}"
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(db=db_url, url=url, mail=mail), encoding="utf-8")
    return config_module.load(path)


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    executor = parse_pool()
    yield executor
    executor.shutdown()


def mails(config: Config) -> list[EmailMessage]:
    return OutboxMailer(config.outbox_path).messages() if config.outbox_path.exists() else []


async def test_a_failing_source_alerts_once_after_the_delay_and_once_on_recovery(
    tmp_path: Path,
    feed_root: Path,
    feed_server: FeedServer,
    store: Store,
    db_url: str,
    pool: ProcessPoolExecutor,
) -> None:
    config = make_config(tmp_path, db_url, feed_server.url("/feeds/news.xml"))
    clock = Clock(T0)
    alerter = Alerter(config, store, OutboxMailer(config.outbox_path), clock=clock)
    async with Poller(config, store, pool=pool, clock=clock) as poller:
        poller.sync_sources()

        async def tick(minutes: float) -> int:
            clock.at(minutes)
            await poller.poll()
            return await alerter.evaluate()

        assert await tick(0) == 0
        (feed_root / "news.xml").unlink()  # the publisher breaks its feed: 404 from now on
        assert [await tick(m) for m in (1, 5, 9)] == [0, 0, 0]  # failing for less than 10m
        assert await tick(12) == 1  # 11 minutes since the first failed poll
        assert [await tick(m) for m in (20, 60, 180)] == [0, 0, 0]  # still failing: no more
        feed_server.write("news.xml", SAMPLE_RSS)
        assert await tick(200) == 1  # recovered
        assert [await tick(m) for m in (201, 300)] == [0, 0]

    sent = mails(config)
    assert sorted(m["Subject"] for m in sent) == sorted(
        ["[feedsvc] Nguồn tin Báo Hà Tĩnh — Xã hội bị lỗi"] * 2
        + ["[feedsvc] Nguồn tin Báo Hà Tĩnh — Xã hội đã hoạt động trở lại"] * 2
    )
    opened = next(m for m in sent if m["Subject"].endswith("bị lỗi"))
    body = opened.get_content()
    assert "Nguồn tin Báo Hà Tĩnh — Xã hội bị lỗi từ 08:01, 28/11/2026 (Asia/Ho_Chi_Minh)." in body
    assert "Source Báo Hà Tĩnh — Xã hội has been failing since 08:01, 28/11/2026" in body
    assert "Lỗi gần nhất: " in body
    assert "404" in body
    assert "https://bantin.example.vn/admin/sources" in body
    assert opened["Auto-Submitted"] == "auto-generated"
    assert opened["To"] == ", ".join(OPERATORS)
    assert store.incidents.open() == []


async def test_a_retired_source_is_one_alert(
    tmp_path: Path, feed_server: FeedServer, store: Store, db_url: str, pool: ProcessPoolExecutor
) -> None:
    config = make_config(tmp_path, db_url, feed_server.url("/status/410"))
    clock = Clock(T0)
    alerter = Alerter(config, store, OutboxMailer(config.outbox_path), clock=clock)
    async with Poller(config, store, pool=pool, clock=clock) as poller:
        poller.sync_sources()
        counts = []
        for minutes in (0, 15, 30, 600):
            clock.at(minutes)
            await poller.poll()
            counts.append(await alerter.evaluate())
    assert counts == [1, 0, 0, 0]
    assert {m["Subject"] for m in mails(config)} == {
        "[feedsvc] Nguồn tin Báo Hà Tĩnh — Xã hội đã ngừng hoạt động (410)"
    }
    [incident] = store.incidents.open()
    assert incident.kind.value == "retired"


def publish(store: Store, source_id: str, at: datetime, n: int) -> None:
    """One new entry of ``source_id`` first seen at ``at`` (the poll succeeded)."""
    [source] = store.sources.list([source_id])
    entry = ParsedEntry(
        identity=f"{source_id}-{n}", title=f"Tin {n}", published=at, content_hash=str(n)
    )
    store.entries.apply(
        source, ParsedFeed("Báo", None, (entry,)), {"status": "ok", "last_polled_at": at}, at
    )


async def test_a_source_quiet_against_its_own_rhythm_alerts_once(
    tmp_path: Path, store: Store, db_url: str
) -> None:
    """A source with a new story every 6 hours is quiet after 2 days (the floor; 4 × 6h is
    less); one with a weekly column is not, until 4 weeks."""
    config = make_config(tmp_path, db_url, "https://baohatinh.vn/rss/xa-hoi.rss")
    start = T0 - timedelta(days=60)
    store.sources.sync(
        [
            ("xa-hoi", "https://baohatinh.vn/rss/xa-hoi.rss"),
            ("tuan", "https://baohatinh.vn/tuan.rss"),
        ],
        start,
    )
    for n in range(12):
        publish(store, "xa-hoi", T0 - timedelta(hours=6 * (11 - n)), n)
    for n in range(6):
        publish(store, "tuan", T0 - timedelta(days=7 * (5 - n)), n)
    clock = Clock(T0)
    outbox = OutboxMailer(config.outbox_path)
    alerter = Alerter(config, store, outbox, clock=clock, quiet_every=timedelta(0))

    async def at(days: float) -> int:
        """Both sources polled fine at that time, and the alerts evaluated."""
        clock.now = T0 + timedelta(days=days)
        for source_id in ("xa-hoi", "tuan"):
            store.sources.record(source_id, {"last_polled_at": clock.now})
        return await alerter.evaluate()

    assert [await at(d) for d in (0.5, 1, 1.9)] == [0, 0, 0]
    assert await at(2.1) == 1
    assert [await at(d) for d in (3, 10, 20)] == [0, 0, 0]  # still quiet; the weekly one is fine
    publish(store, "xa-hoi", T0 + timedelta(days=20, hours=1), 99)
    assert await at(20.1) == 1  # news again: recovered
    assert await at(27.5) == 1  # silent again since day 20; the weekly one is 27.5 days late
    assert [incident.source_id for incident in store.incidents.open()] == ["xa-hoi"]
    assert await at(28.5) == 1  # now 4 weeks without the weekly column
    assert sorted(incident.source_id for incident in store.incidents.open()) == ["tuan", "xa-hoi"]
    subjects = [m["Subject"] for m in mails(config)]
    assert subjects.count("[feedsvc] Nguồn tin Báo Hà Tĩnh — Xã hội ngừng cập nhật") == 4
    assert subjects.count("[feedsvc] Nguồn tin Báo Hà Tĩnh — Xã hội đã hoạt động trở lại") == 2
    assert subjects.count("[feedsvc] Nguồn tin tuan ngừng cập nhật") == 2
    assert len(subjects) == 8  # each notice to both operators


WORKER = """
import asyncio, sys, time
from feedsvc import config
from feedsvc.newsletter.alerts import Alerter
from feedsvc.newsletter.mail import create_mailer
from feedsvc.store import Store

settings = config.load(sys.argv[1])
store = Store.open(settings.database_url, upgrade=False)

async def main():
    mailer = create_mailer(settings)
    alerter = Alerter(settings, store, mailer)
    while time.time() < float(sys.argv[2]):
        await asyncio.sleep(0.001)
    for _ in range(int(sys.argv[3])):
        await alerter.evaluate()
    await mailer.close()

asyncio.run(main())
"""


def run_workers(config: Config, rounds: int = 15) -> None:
    start = time.time() + 1.5  # both started and connected: they begin together
    args = [sys.executable, "-c", WORKER, str(config.path), str(start), str(rounds)]
    workers = [subprocess.Popen(args, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err


@pytest.mark.postgres
def test_two_processes_on_postgresql_send_each_alert_once(tmp_path: Path, pg_url: str) -> None:
    with ThreadedSmtpServer() as smtp:
        smtp.server.delay = 0.3  # slow sends: both processes find the notice owed meanwhile
        mail = "\n".join(
            ["  backend: smtp", "  smtp:", "    host: 127.0.0.1", f"    port: {smtp.port}"]
            + ["    starttls: false"]
        )
        config = make_config(tmp_path, pg_url, "https://baohatinh.vn/rss/xa-hoi.rss", mail)
        store = Store.open(pg_url)
        try:
            now = datetime.now(UTC)
            store.sources.sync(
                [("xa-hoi", "https://baohatinh.vn/rss/xa-hoi.rss")], now - timedelta(hours=2)
            )
            failing = {
                "status": "backoff",
                "error_count": 4,
                "last_error": "HTTP 503",
                "last_polled_at": now - timedelta(hours=1),
            }
            store.sources.record("xa-hoi", failing)
            run_workers(config)
            assert smtp.recipients == dict.fromkeys(OPERATORS, 1)
            store.sources.record("xa-hoi", {"status": "ok", "error_count": 0, "last_error": None})
            run_workers(config)
            assert smtp.recipients == dict.fromkeys(OPERATORS, 2)
            parser = BytesParser(policy=email.policy.default)
            subjects = sorted(str(parser.parsebytes(m.data)["Subject"]) for m in smtp.messages)
            assert (
                subjects
                == ["[feedsvc] Nguồn tin Báo Hà Tĩnh — Xã hội bị lỗi"] * 2
                + ["[feedsvc] Nguồn tin Báo Hà Tĩnh — Xã hội đã hoạt động trở lại"] * 2
            )
        finally:
            store.close()


async def test_status_and_metrics_show_open_incidents(
    tmp_path: Path, store: Store, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(tmp_path, db_url, "https://baohatinh.vn/rss/xa-hoi.rss")
    config = config.model_copy(
        update={"http": config.http.model_copy(update={"status_page": True})}
    )
    store.sources.sync([("xa-hoi", "https://baohatinh.vn/rss/xa-hoi.rss")], T0)
    gone = {"status": "retired", "last_error": "HTTP 410 Gone", "last_polled_at": T0}
    store.sources.record("xa-hoi", gone)
    await Alerter(config, store, OutboxMailer(config.outbox_path), clock=Clock(T0)).evaluate()
    monkeypatch.setenv(status.STATUS_TOKEN_ENV, "status-token-for-tests")

    async with serving(config, store) as base, aiohttp.ClientSession() as client:
        headers = {"Authorization": "Bearer status-token-for-tests"}
        async with client.get(f"{base}/status", headers=headers) as response:
            assert response.status == 200
            page = await response.text()
        async with client.get(f"{base}/metrics") as response:
            scrape = await response.text()

    assert 'id="incident-xa-hoi"' in page
    assert "Sự cố đang mở" in page
    assert "HTTP 410 Gone" in page
    assert 'feedsvc_incidents_open{kind="retired"} 1.0' in scrape
    assert 'feedsvc_incidents_open{kind="failing"} 0.0' in scrape
