"""kill -9 in the middle of sending digests, then the same command again at once: every
subscriber gets their digest, and at most the messages inside an SMTP transaction
at the kill (mail.concurrency of them) arrive twice. Leases a live process holds are
reported, and waited for with --wait."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from feedsvc import config as config_module
from feedsvc.lease import process_owner
from feedsvc.model import utcnow
from feedsvc.newsletter.compose import subscriber_links
from feedsvc.newsletter.deliver import Deliverer
from feedsvc.newsletter.mail import OutboxMailer
from feedsvc.newsletter.tokens import Tokens
from feedsvc.store import Store
from tests._seed import add_readers, entries_before_digest

SUBSCRIBERS = 300
CONCURRENCY = 4


def start_smtp(spool: Path) -> tuple[subprocess.Popen[str], int]:
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.smtpserver", "--delay-ms", "15", "--spool", str(spool)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    url = server.stdout.readline().strip()  # smtp://127.0.0.1:PORT
    return server, int(url.rsplit(":", 1)[1])


def prepare(tmp_path: Path, port: int, lease: str = "2m", *, just_now: bool = False) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""\
site:
  title: "Báo Hà Tĩnh — Bản tin"
  base_url: "https://bantin.example.vn"
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
  smtp: {{host: 127.0.0.1, port: {port}, starttls: false}}
  concurrency: {CONCURRENCY}
  rate_per_second: 1000
  lease: {lease}
""",
        encoding="utf-8",
    )
    config = config_module.load(path)
    store = Store.open(config.database_url)
    titles = [f"Tin {n}: Hà Tĩnh" for n in range(5)]
    at = utcnow() - timedelta(minutes=1) if just_now else None  # after today's 07:00
    seen = entries_before_digest(config, store, titles, at)
    add_readers(store, SUBSCRIBERS, schedule="daily", since=seen - timedelta(days=3))
    store.close()
    return path


def signal_after_a_third(
    command: list[str], spool: Path, signum: signal.Signals
) -> subprocess.Popen[bytes]:
    """Start ``command``; once a third of the readers have their message, send ``signum``."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while received(spool) < SUBSCRIBERS // 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signum)
    return process


def received(spool: Path) -> int:
    log = spool / "received.jsonl"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_kill_9_mid_send_then_again_delivers_each_digest_once(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    server, port = start_smtp(spool)
    try:
        config = prepare(tmp_path, port)
        command = [
            sys.executable,
            "-m",
            "feedsvc",
            "digest",
            "send",
            "daily",
            "--config",
            str(config),
        ]
        sender = signal_after_a_third(command, spool, signal.SIGKILL)
        sender.wait()
        at_kill = received(spool)
        assert 0 < at_kill < SUBSCRIBERS  # killed mid-send
        # At once: the dead process's leases (mail.lease: 2m) are taken over, not waited out.
        again = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        assert "leased by another process" not in again.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    counts = json.loads(output.strip().splitlines()[-1])["recipients"]
    expected = {f"reader{n}@example.vn" for n in range(SUBSCRIBERS)}
    assert set(counts) == expected  # nobody skipped
    doubled = {address: n for address, n in counts.items() if n > 1}
    assert len(doubled) <= CONCURRENCY, doubled  # only those in flight at the kill
    assert all(n == 2 for n in doubled.values())


def test_leases_of_a_live_process_are_reported_then_waited_for(tmp_path: Path) -> None:
    """Deliveries leased by a process that is alive (this test's own process, on this
    host) are not a dead process's: `digest send` sends the rest, says how many are
    held and until when, and with --wait sends them once the leases expire."""
    spool = tmp_path / "spool"
    server, port = start_smtp(spool)
    try:
        config_path = prepare(tmp_path, port)
        config = config_module.load(config_path)
        store = Store.open(config.database_url)
        try:
            links = subscriber_links(config, Tokens.from_config(config))
            Deliverer(config, store, OutboxMailer(tmp_path / "unused"), links=links).plan("daily")
            held = store.deliveries.claim(
                process_owner(), utcnow(), timedelta(seconds=25), schedule="daily", limit=50
            )
        finally:
            store.close()
        assert len(held) == 50
        command = [sys.executable, "-m", "feedsvc", "digest", "send", "daily"]
        command += ["--config", str(config_path)]
        told = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert told.returncode == 0, told.stderr
        line = told.stderr.strip().splitlines()[-1]
        assert line.startswith("50 deliveries leased by another process ("), line
        assert f"pid {os.getpid()}, running) until " in line
        assert line.endswith("run again then, or with --wait")
        assert received(spool) == SUBSCRIBERS - 50
        waited = subprocess.run([*command, "--wait"], capture_output=True, text=True, timeout=120)
        assert waited.returncode == 0, waited.stderr
        assert "leased by another process" not in waited.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    counts = json.loads(output.strip().splitlines()[-1])["recipients"]
    assert counts == {f"reader{n}@example.vn": 1 for n in range(SUBSCRIBERS)}


def test_kill_9_mid_send_now_then_again_finishes_that_period(tmp_path: Path) -> None:
    """`digest send --now` killed mid-send, then the same command: the rerun finishes the
    period the first one opened instead of starting a second, overlapping one."""
    spool = tmp_path / "spool"
    server, port = start_smtp(spool)
    try:
        config = prepare(tmp_path, port, just_now=True)
        command = [sys.executable, "-m", "feedsvc", "digest", "send", "daily", "--now"]
        command += ["--config", str(config)]
        sender = signal_after_a_third(command, spool, signal.SIGKILL)
        sender.wait()
        assert 0 < received(spool) < SUBSCRIBERS
        again = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        assert again.stdout.startswith("finishing the daily period of "), again.stdout
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    counts = json.loads(output.strip().splitlines()[-1])["recipients"]
    assert set(counts) == {f"reader{n}@example.vn" for n in range(SUBSCRIBERS)}
    doubled = {address: n for address, n in counts.items() if n > 1}
    assert len(doubled) <= CONCURRENCY, doubled
    store = Store.open(config_module.load(config).database_url)
    try:
        assert store.deliveries.counts() == {"sent": SUBSCRIBERS}  # one period, one row each
    finally:
        store.close()
