"""Reports that come back after sending, read from a Maildir and from a real IMAP server
(Dovecot on 127.0.0.1): each one changes what it should, once, across restarts and
processes.

The reports in tests/data/bounces/ describe one morning (see its README): four
readers, two daily digests each, deliveries 1–8.
"""

from __future__ import annotations

import imaplib
import os
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feedsvc import config as config_module
from feedsvc.config import Config
from feedsvc.model import DeliveryOutcome, DeliveryState, ReportOutcome, SubscriberStatus
from feedsvc.newsletter.compose import message_id
from feedsvc.newsletter.mailbox import KEYWORD, MailboxError
from feedsvc.newsletter.reports import ReportProcessor, read_mailbox
from feedsvc.store import Store
from tests import imapserver

REPORTS = Path(__file__).parents[1] / "data" / "bounces"
KEY = "test-secret-key-0123456789"
PASSWORD = "mật-khẩu-thư-dội"
READERS = (
    "an.nguyen@gmail.com",
    "binh.tran@outlook.com",
    "chi.le@yahoo.com",
    "dung.pham@baohatinh.vn",
)
PERIODS = (datetime(2026, 11, 27, 0, 0, tzinfo=UTC), datetime(2026, 11, 28, 0, 0, tzinfo=UTC))

CONFIG = """\
site:
  title: "Báo Hà Tĩnh — Bản tin"
  base_url: "https://bantin.example.vn"
  secret_key_env: FEEDSVC_TEST_BOUNCE_KEY
storage:
  url: "{db}"
newsletter:
  from: "Bản tin Hà Tĩnh <bantin@example.vn>"
mail:
  bounce_limit: 2
  bounces:
    mailbox: "{mailbox}"
    password_env: FEEDSVC_TEST_IMAP_PASSWORD
    timeout: 10s
{extra}"""

# What the morning's reports leave behind (README of tests/data/bounces/).
STATES = {
    1: DeliveryState.BOUNCED,  # Gmail, VERP
    2: DeliveryState.BOUNCED,  # Outlook, Message-ID + address
    3: DeliveryState.SENT,  # delayed: recorded only
    4: DeliveryState.BOUNCED,  # qmail, through flufl.bounce
    5: DeliveryState.BOUNCED,  # Postfix
    6: DeliveryState.SENT,  # complained about (JMRP), and a forged bounce
    7: DeliveryState.SENT,  # complained about (Yahoo ARF)
    8: DeliveryState.SENT,  # an out-of-office reply
}
READERS_AFTER = {
    "an.nguyen@gmail.com": (SubscriberStatus.BOUNCED, 2),  # mail.bounce_limit: 2
    "binh.tran@outlook.com": (SubscriberStatus.UNSUBSCRIBED, 1),
    "chi.le@yahoo.com": (SubscriberStatus.UNSUBSCRIBED, 0),
    "dung.pham@baohatinh.vn": (SubscriberStatus.ACTIVE, 1),
}
OUTCOMES = {
    "bounced": 3,
    "subscriber_bounced": 1,
    "unsubscribed": 2,
    "recorded": 1,
    "unmatched": 2,
    "ignored": 1,
}


def make_config(tmp_path: Path, db_url: str, mailbox: str, extra: str = "") -> Config:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(db=db_url, mailbox=mailbox, extra=extra), encoding="utf-8")
    return config_module.load(path)


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDSVC_TEST_BOUNCE_KEY", KEY)
    monkeypatch.setenv("FEEDSVC_TEST_IMAP_PASSWORD", PASSWORD)


@pytest.fixture
def morning(store: Store) -> Store:
    """Four readers, two sent digests each: deliveries 1–4 then 5–8."""
    now = PERIODS[0] - timedelta(days=3)
    ids = []
    for address in READERS:
        subscriber, _ = store.subscribers.add(
            address,
            categories=["xa-hoi"],
            schedule="daily",
            locale="vi",
            timezone="Asia/Ho_Chi_Minh",
            confirmed=True,
            now=now,
        )
        ids.append(subscriber.id)
    assert ids == [1, 2, 3, 4]
    for period in PERIODS:
        windows = [
            (i, period - timedelta(days=1), period, message_id("daily", period, i, "example.vn"))
            for i in ids
        ]
        store.deliveries.create("daily", period, windows, period)
        claimed = store.deliveries.claim("sender", period, timedelta(minutes=2))
        sent = [DeliveryOutcome(d.id, DeliveryState.SENT, period) for d in claimed]
        store.deliveries.finish_many("sender", sent)
    assert store.deliveries.counts() == {"sent": 8}
    return store


def deliver_all(maildir: Path) -> None:
    """Every report into ``new/``, as a delivery agent leaves them."""
    for folder in ("new", "cur", "tmp"):
        (maildir / folder).mkdir(parents=True, exist_ok=True)
    for n, path in enumerate(sorted(REPORTS.glob("*.eml"))):
        (maildir / "new" / f"1764288{n:03d}.M{n}P1.mail").write_bytes(path.read_bytes())


def assert_the_morning(store: Store) -> None:
    states = {
        delivery_id: store.bounces.delivery(delivery_id).state  # type: ignore[union-attr]
        for delivery_id in STATES
    }
    assert states == STATES
    readers = {s.email: (s.status, s.bounce_count) for s in store.subscribers.list()}
    assert readers == READERS_AFTER
    assert store.bounces.outcomes() == OUTCOMES


def test_reports_in_a_maildir_change_each_state_once(
    morning: Store, db_url: str, tmp_path: Path
) -> None:
    maildir = tmp_path / "bounces"
    deliver_all(maildir)
    config = make_config(tmp_path, db_url, str(maildir))

    processed = read_mailbox(config, morning)

    assert len(processed) == 10
    assert all(p.outcome is not None for p in processed)
    assert_the_morning(morning)
    assert list((maildir / "new").iterdir()) == []
    moved = sorted(path.name for path in (maildir / "cur").iterdir())
    assert len(moved) == 10
    assert all(name.endswith(":2,S") for name in moved)
    unmatched = [r for r in morning.bounces.records() if r["outcome"] == "unmatched"]
    assert {r["raw"] is not None for r in unmatched} == {True}  # kept for a person to read
    [forged] = [r for r in unmatched if r["message_id"] == "<forged.1@mail.attacker.example>"]
    assert "not one feedsvc signed" in forged["detail"]
    assert "not its recipient" in forged["detail"]


def test_no_report_counts_twice_after_a_restart(
    morning: Store, db_url: str, tmp_path: Path
) -> None:
    """The same reports again (a crash before the mailbox was marked, a second copy), read
    by a new process: nothing changes."""
    maildir = tmp_path / "bounces"
    deliver_all(maildir)
    config = make_config(tmp_path, db_url, str(maildir))
    read_mailbox(config, morning)
    deliver_all(maildir)

    restarted = Store.open(db_url)
    try:
        again = read_mailbox(config, restarted)
        assert len(again) == 10
        assert {p.outcome for p in again} == {None}
        assert_the_morning(restarted)
    finally:
        restarted.close()


def test_a_file_processed_twice_counts_once(morning: Store, db_url: str, tmp_path: Path) -> None:
    config = make_config(tmp_path, db_url, str(tmp_path / "unused"))
    gmail, postfix = REPORTS / "gmail-nosuchuser.eml", REPORTS / "postfix-user-unknown.eml"
    copy = tmp_path / "copy of gmail.eml"
    shutil.copy(gmail, copy)

    first = bounces_process(config, gmail, gmail, copy)
    second = bounces_process(config, gmail, postfix)

    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    lines = first.stdout.splitlines()
    assert lines[0] == f"{gmail}: permanent report, delivery 1 (subscriber 1): bounced"
    assert lines[1:] == [
        f"{gmail}: processed before: nothing changed",
        f"{copy}: processed before: nothing changed",
    ]
    assert second.stdout.splitlines() == [
        f"{gmail}: processed before: nothing changed",
        f"{postfix}: permanent report, delivery 5 (subscriber 1): subscriber_bounced",
    ]
    reader = morning.subscribers.by_email("an.nguyen@gmail.com")
    assert reader is not None
    assert (reader.status, reader.bounce_count) == (
        SubscriberStatus.BOUNCED,
        2,
    )


def bounces_process(config: Config, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "feedsvc",
            "bounces",
            "process",
            *map(str, files),
            "--config",
            str(config.path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_processes_reading_one_report_at_once_count_it_once(
    morning: Store, db_url: str, tmp_path: Path
) -> None:
    """Two processors with engines of their own (as two processes have) race on each report."""
    config = make_config(tmp_path, db_url, str(tmp_path / "unused"))
    stores = [Store.open(db_url, upgrade=False) for _ in range(2)]
    outcomes: list[ReportOutcome | None] = []
    lock = threading.Lock()
    files = [REPORTS / "gmail-nosuchuser.eml", REPORTS / "outlook-mailbox-unavailable.eml"]
    barrier = threading.Barrier(2)

    def work(store: Store) -> None:
        processor = ReportProcessor.from_config(config, store)
        for path in files:
            barrier.wait()
            processed = processor.process(path.read_bytes(), f"file:{path}")
            with lock:
                outcomes.append(processed.outcome)

    threads = [threading.Thread(target=work, args=(store,)) for store in stores]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        for store in stores:
            store.close()
    assert sorted(str(o) for o in outcomes) == ["None", "None", "bounced", "bounced"]
    counts = {s.email: s.bounce_count for s in morning.subscribers.list()}
    assert counts["an.nguyen@gmail.com"] == counts["binh.tran@outlook.com"] == 1


# --- through IMAP: Dovecot --------------------------------------------------------------


def require_dovecot() -> None:
    """Dovecot from Debian; skips without it, except under CI, where it fails."""
    if not imapserver.available():
        message = "dovecot is not installed: apt-get install -y dovecot-imapd (scripts/system-deps)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def dovecot() -> Iterator[imapserver.Dovecot]:
    require_dovecot()
    with imapserver.Dovecot(PASSWORD) as server:
        yield server


def imap_config(
    tmp_path: Path, db_url: str, server: imapserver.Dovecot, extra: str = "", **url: bool
) -> Config:
    extra = f"    ca_file: {server.cert}\n{extra}"
    return make_config(tmp_path, db_url, server.url(**url), extra)


def imap_client(server: imapserver.Dovecot, folder: str = "INBOX") -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", server.port)
    client.starttls(ssl.create_default_context(cafile=str(server.cert)))
    client.authenticate("PLAIN", lambda _: f"\0bounces\0{PASSWORD}".encode())
    client.select(f'"{folder}"')
    return client


def imap_deliver_all(server: imapserver.Dovecot) -> None:
    for path in sorted(REPORTS.glob("*.eml")):
        server.deliver(path.read_bytes())


def test_reports_through_imap_change_each_state_once(
    morning: Store, db_url: str, tmp_path: Path, dovecot: imapserver.Dovecot
) -> None:
    imap_deliver_all(dovecot)
    config = imap_config(tmp_path, db_url, dovecot)

    processed = read_mailbox(config, morning)

    assert len(processed) == 10
    assert_the_morning(morning)
    client = imap_client(dovecot)
    try:
        assert client.uid("SEARCH", "UNKEYWORD", KEYWORD) == ("OK", [b""])
        assert client.uid("SEARCH", "UNSEEN") == ("OK", [b""])
    finally:
        client.logout()
    assert "Login: user=<bounces>, method=PLAIN" in dovecot.log()
    assert ", TLS," in dovecot.log()


def test_imap_after_a_restart_counts_nothing_twice(
    morning: Store, db_url: str, tmp_path: Path, dovecot: imapserver.Dovecot
) -> None:
    """A crash after recording but before marking: the keyword is missing on the server, and
    a second copy of every report arrived. The restarted process changes nothing."""
    imap_deliver_all(dovecot)
    config = imap_config(tmp_path, db_url, dovecot)
    read_mailbox(config, morning)
    client = imap_client(dovecot)
    try:
        client.uid("STORE", "1:*", "-FLAGS.SILENT", f"({KEYWORD})")
    finally:
        client.logout()
    imap_deliver_all(dovecot)

    restarted = Store.open(db_url)
    try:
        again = read_mailbox(config, restarted)
        assert len(again) == 20
        assert {p.outcome for p in again} == {None}
        assert_the_morning(restarted)
    finally:
        restarted.close()


def test_imaps_with_move_to_files_processed_reports_away(
    morning: Store, db_url: str, tmp_path: Path, dovecot: imapserver.Dovecot
) -> None:
    imap_deliver_all(dovecot)
    config = imap_config(tmp_path, db_url, dovecot, "    move_to: Processed\n", implicit_tls=True)

    read_mailbox(config, morning)

    assert_the_morning(morning)
    client = imap_client(dovecot)
    try:
        assert client.uid("SEARCH", "ALL") == ("OK", [b""])
        client.select('"Processed"')
        assert len(client.uid("SEARCH", "KEYWORD", KEYWORD)[1][0].split()) == 10
    finally:
        client.logout()


def test_an_untrusted_certificate_is_one_line_and_no_password_sent(
    morning: Store, db_url: str, tmp_path: Path, dovecot: imapserver.Dovecot
) -> None:
    dovecot.deliver((REPORTS / "gmail-nosuchuser.eml").read_bytes())
    config = make_config(tmp_path, db_url, dovecot.url())  # no ca_file: the system's CAs

    with pytest.raises(MailboxError) as caught:
        read_mailbox(config, morning)

    message = str(caught.value)
    assert message.startswith(f"{dovecot.url()}: ")
    assert "CERTIFICATE_VERIFY_FAILED" in message
    assert "\n" not in message
    assert PASSWORD not in message
    assert "Login: user=" not in dovecot.log()
    assert morning.bounces.outcomes() == {}


def test_a_server_without_tls_is_refused_before_the_password(
    morning: Store, db_url: str, tmp_path: Path
) -> None:
    require_dovecot()
    with imapserver.Dovecot(PASSWORD, tls=False) as plain:
        plain.deliver((REPORTS / "gmail-nosuchuser.eml").read_bytes())
        config = make_config(tmp_path, db_url, plain.url())
        with pytest.raises(MailboxError) as caught:
            read_mailbox(config, morning)
        log = plain.log()
    assert str(caught.value) == f"{plain.url()}: the server offers no STARTTLS; refusing to log in"
    assert "Login: user=" not in log
    assert morning.bounces.outcomes() == {}


def test_an_unreachable_mailbox_is_one_line_from_the_cli(
    morning: Store, db_url: str, tmp_path: Path
) -> None:
    from tests._net import free_port

    mailbox = f"imap://bounces@127.0.0.1:{free_port()}/INBOX"
    config = make_config(tmp_path, db_url, mailbox)
    done = subprocess.run(
        [sys.executable, "-m", "feedsvc", "bounces", "fetch", "--config", str(config.path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith(f"Error: {mailbox}: ")
    assert "refused" in done.stderr
    assert done.stderr.count("\n") == 1
