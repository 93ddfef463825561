"""Scale-out on the real PostgreSQL: three `feedsvc run` processes share 100 sources
and 500 subscribers through the database alone, with the defaults for leases
(mail.lease: 2m). Each source is polled once per interval, and when one process is
killed -9 after 50 messages have arrived, the others take its leased work over:
every subscriber gets one digest, a second copy only for the messages the killed
process had inside an SMTP transaction (mail.concurrency: 2)."""

from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from feedsvc.model import utcnow
from feedsvc.store import Store
from feedsvc.store.schema import deliveries
from tests._net import free_port
from tests._seed import add_readers
from tests.e2e.test_service import fresh_feed, wait_for
from tests.feedserver import ThreadedFeedServer
from tests.smtpserver import ThreadedSmtpServer

SOURCES = 100
SUBSCRIBERS = 500


def write_configs(
    tmp_path: Path, pg_url: str, feeds: ThreadedFeedServer, smtp_port: int
) -> list[Path]:
    sources = "".join(
        f'  - id: s{n}\n    url: "{feeds.url(f"/feeds/s{n}.rss")}"\n    categories: [xa-hoi]\n'
        for n in range(SOURCES)
    )
    paths = []
    for number in range(3):
        port = free_port()
        path = tmp_path / f"config{number}.yaml"
        path.write_text(
            f"""\
site:
  title: "Báo Hà Tĩnh — Bản tin"
  base_url: "http://127.0.0.1:{port}"
  secret_key_env: FEEDSVC_TEST_SECRET
storage:
  url: "{pg_url}"
http:
  port: {port}
fetch:
  allow_private_networks: true
  interval: 1h
categories:
  - id: xa-hoi
    title: "Xã hội"
newsletter:
  from: "Bản tin Hà Tĩnh <bantin@example.vn>"
  schedules:
    minutely: "* * * * *"
  default_schedule: minutely
mail:
  backend: smtp
  smtp: {{host: 127.0.0.1, port: {smtp_port}, starttls: false}}
  concurrency: 2
  rate_per_second: 1000
sources:
{sources}""",
            encoding="utf-8",
        )
        paths.append(path)
    return paths


def test_three_processes_share_the_work_and_survive_a_kill(tmp_path: Path, pg_url: str) -> None:
    store = Store.open(pg_url)
    add_readers(store, SUBSCRIBERS, schedule="minutely", since=utcnow() - timedelta(days=1))
    root = tmp_path / "feeds"
    root.mkdir()
    with ThreadedFeedServer(root) as feeds, ThreadedSmtpServer(delay=0.05) as smtp:
        for n in range(SOURCES):
            feeds.write(f"s{n}.rss", fresh_feed().replace("tin-", f"s{n}-"))
        configs = write_configs(tmp_path, pg_url, feeds, smtp.port)
        env = {**os.environ, "FEEDSVC_TEST_SECRET": "one secret for every process, 32+ chars"}
        # Polled before the processes start: only one period per subscriber has news.
        command = [sys.executable, "-m", "feedsvc", "poll", "--config", str(configs[0])]
        subprocess.run(command, env=env, check=True, capture_output=True)
        logs = [path.with_suffix(".log").open("w") for path in configs]
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "feedsvc", "run", "--config", str(path)],
                stderr=log,
                env=env,
            )
            for path, log in zip(configs, logs, strict=True)
        ]
        try:
            deadline = time.monotonic() + 150
            while sum(smtp.recipients.values()) < 50:
                assert time.monotonic() < deadline, "timed out waiting for sending"
                time.sleep(0.005)
            processes[0].send_signal(signal.SIGKILL)  # mid-send, holding leased deliveries
            processes[0].wait()
            wait_for(lambda: len(smtp.recipients) == SUBSCRIBERS, 120, "every digest")
            # A later period is planned and closed for everyone (nothing new: no email)
            # before we count: a window that overlapped the held one would send again.
            wait_for(lambda: next_period_closed(store), 150, "the next period")
            polled = [feeds.requests[f"/feeds/s{n}.rss"] for n in range(SOURCES)]
        finally:
            for process in processes[1:]:
                process.send_signal(signal.SIGTERM)
            codes = [process.wait(timeout=60) for process in processes[1:]]
            for log in logs:
                log.close()
            store.close()
    assert polled == [1] * SOURCES  # each source once in its interval, by one process
    assert codes == [0, 0], [path.with_suffix(".log").read_text()[-3000:] for path in configs]
    messages = Counter(message.recipients[0] for message in smtp.messages)
    assert set(messages) == {f"reader{n}@example.vn" for n in range(SUBSCRIBERS)}
    doubled = {recipient: n for recipient, n in messages.items() if n > 1}
    assert len(doubled) <= 2, doubled  # what the killed process had in flight
    assert all(n == 2 for n in doubled.values())
    copies = Counter((message.recipients[0], message_id(message.data)) for message in smtp.messages)
    assert len(copies) == SUBSCRIBERS  # and the second copy is the same message


def next_period_closed(store: Store) -> bool:
    """Every subscriber has a delivery of a period after the one that had the news,
    and none is pending or sending any more."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(deliveries.c.subscriber_id, deliveries.c.period, deliveries.c.state)
        ).all()
    if any(state in ("pending", "sending") for _, _, state in rows):
        return False
    news = {subscriber: period for subscriber, period, state in rows if state == "sent"}
    later = {subscriber for subscriber, period, _ in rows if period > news.get(subscriber, period)}
    return len(news) == SUBSCRIBERS and len(later) == SUBSCRIBERS


def message_id(data: bytes) -> str:
    return str(email.message_from_bytes(data)["Message-ID"])
