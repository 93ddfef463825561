"""Scale-out on the real PostgreSQL: three `feedsvc run` processes share 100 sources
and 500 subscribers through the database alone. Each source is polled once per
interval, each subscriber gets one digest, and when one process is killed -9 in
the middle of sending, the others finish its leased work."""

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

from feedsvc.model import utcnow
from feedsvc.store import Store
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
  lease: 3s
sources:
{sources}""",
            encoding="utf-8",
        )
        paths.append(path)
    return paths


def test_three_processes_share_the_work_and_survive_a_kill(tmp_path: Path, pg_url: str) -> None:
    store = Store.open(pg_url)
    add_readers(store, SUBSCRIBERS, schedule="minutely", since=utcnow() - timedelta(days=1))
    store.close()
    root = tmp_path / "feeds"
    root.mkdir()
    with ThreadedFeedServer(root) as feeds, ThreadedSmtpServer(delay=0.01) as smtp:
        for n in range(SOURCES):
            feeds.write(f"s{n}.rss", fresh_feed().replace("tin-", f"s{n}-"))
        configs = write_configs(tmp_path, pg_url, feeds, smtp.port)
        env = {"FEEDSVC_TEST_SECRET": "one secret for every process, 32+ chars"}
        logs = [path.with_suffix(".log").open("w") for path in configs]
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "feedsvc", "run", "--config", str(path)],
                stderr=log,
                env={**os.environ, **env},
            )
            for path, log in zip(configs, logs, strict=True)
        ]
        try:
            wait_for(lambda: sum(smtp.recipients.values()) >= SUBSCRIBERS // 5, 150, "sending")
            processes[0].send_signal(signal.SIGKILL)  # mid-send, holding leased deliveries
            processes[0].wait()
            wait_for(lambda: len(smtp.recipients) == SUBSCRIBERS, 120, "every digest")
            time.sleep(1)
            polled = [feeds.requests[f"/feeds/s{n}.rss"] for n in range(SOURCES)]
        finally:
            for process in processes[1:]:
                process.send_signal(signal.SIGTERM)
            codes = [process.wait(timeout=60) for process in processes[1:]]
            for log in logs:
                log.close()
    assert polled == [1] * SOURCES  # each source once in its interval, by one process
    assert codes == [0, 0], [path.with_suffix(".log").read_text()[-3000:] for path in configs]
    # One digest per subscriber and period (entries polled on both sides of a minute
    # make two periods): a second copy of the same Message-ID only for what the
    # killed process had inside an SMTP transaction (mail.concurrency: 2).
    copies = Counter((message.recipients[0], message_id(message.data)) for message in smtp.messages)
    assert {recipient for recipient, _ in copies} == {
        f"reader{n}@example.vn" for n in range(SUBSCRIBERS)
    }
    doubled = {key: n for key, n in copies.items() if n > 1}
    assert len(doubled) <= 2, doubled
    assert all(n == 2 for n in doubled.values())


def message_id(data: bytes) -> str:
    return str(email.message_from_bytes(data)["Message-ID"])
