"""Editions through the CLI, on a real database: the upcoming edition right after a poll,
the latest due one as `send` sends it, why nothing was sent, a period sent now, and a
test email that records nothing."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedsvc import config as config_module
from feedsvc.store import Store
from tests._seed import entries_before_digest
from tests.e2e.test_cli import feedsvc, make_config
from tests.e2e.test_service import fresh_feed
from tests.feedserver import ThreadedFeedServer
from tests.smtpserver import ThreadedSmtpServer

PLACEHOLDER = re.compile(r"@@[A-Z_]+@@")


@pytest.fixture
def feeds(tmp_path: Path) -> Iterator[ThreadedFeedServer]:
    root = tmp_path / "feeds"
    root.mkdir()
    with ThreadedFeedServer(root) as server:
        server.write("xa-hoi.rss", fresh_feed())
        yield server


def subscribe(config: Path, address: str = "an@example.vn") -> None:
    feedsvc("subscribers", "add", address, "--confirmed", config=config, check=True)


def outbox(tmp_path: Path) -> list[email.message.EmailMessage]:
    parse = email.parser.BytesParser(policy=email.policy.default).parsebytes
    files = sorted((tmp_path / "var" / "outbox").glob("*.eml"))
    return [parse(path.read_bytes()) for path in files]  # type: ignore[misc]


def test_a_newcomer_sees_the_upcoming_edition_right_after_a_poll(
    tmp_path: Path, feeds: ThreadedFeedServer
) -> None:
    config = make_config(tmp_path, {"xa-hoi": feeds.url("/feeds/xa-hoi.rss")})
    feedsvc("poll", config=config, check=True)
    subscribe(config)
    html, text = tmp_path / "edition.html", tmp_path / "edition.txt"
    shown = feedsvc("digest", "preview", "daily", "an@example.vn", config=config, check=True)
    head = shown.stdout.splitlines()[0]
    assert re.fullmatch(
        r"upcoming daily edition for an@example\.vn, to be sent \w[\w ]* \d\d/\d\d 07:00"
        r" \(UTC\+7\): 5 stories so far",
        head,
    ), head
    assert "Trẻ em Hà Tĩnh: tin 4" in shown.stdout
    assert "/unsubscribe/" in shown.stdout
    assert "/preferences/" in shown.stdout
    assert not PLACEHOLDER.search(shown.stdout)
    feedsvc(
        "digest",
        "preview",
        "daily",
        "an@example.vn",
        "--html",
        str(html),
        "--text",
        str(text),
        config=config,
        check=True,
    )
    assert html.read_text().lstrip().lower().startswith("<!doctype html")
    assert "Trẻ em Hà Tĩnh: tin 0" in text.read_text()
    assert not PLACEHOLDER.search(html.read_text() + text.read_text())
    assert not (tmp_path / "var" / "outbox").exists()  # nothing sent


def test_the_latest_preview_is_what_send_sends_and_a_second_send_says_why(
    tmp_path: Path,
) -> None:
    config_path = make_config(tmp_path, {"xa-hoi": "https://baohatinh.vn/rss/xa-hoi.rss"})
    config = config_module.load(config_path)
    store = Store.open(config.database_url)
    titles = [f"Tin {n}: Trẻ em" for n in range(3)]
    entries_before_digest(config, store, titles)
    store.close()
    subscribe(config_path)
    latest = feedsvc(
        "digest", "preview", "daily", "an@example.vn", "--latest", config=config_path, check=True
    )
    sent = feedsvc("digest", "send", "daily", config=config_path, check=True)
    assert "1 sent" in sent.stdout
    [message] = outbox(tmp_path)
    body = message.get_body(("plain",)).get_content()
    assert f"Subject: {message['Subject']}" in latest.stdout
    for title in titles:
        assert title in body
        assert title in latest.stdout
    again = feedsvc("digest", "send", "daily", config=config_path, check=True)
    reason = again.stdout.strip().splitlines()[-1]
    assert reason.startswith("nothing sent: the daily edition of "), reason
    assert "was already sent to 1 subscribers" in reason
    assert re.search(r"; 0 stories waiting for the next edition, .+ 07:00 \(UTC\+7\)$", reason)


def test_send_now_closes_a_period_and_the_next_starts_where_it_ended(
    tmp_path: Path, feeds: ThreadedFeedServer
) -> None:
    config = make_config(tmp_path, {"xa-hoi": feeds.url("/feeds/xa-hoi.rss")})
    feedsvc("poll", config=config, check=True)
    subscribe(config)
    nothing_yet = feedsvc("digest", "send", "daily", config=config, check=True)
    assert "5 stories waiting for the next edition" in nothing_yet.stdout
    now = feedsvc("digest", "send", "daily", "--now", config=config, check=True)
    assert "1 sent" in now.stdout
    [first] = outbox(tmp_path)
    assert "(5 tin mới)" in str(first["Subject"])
    feeds.write("xa-hoi.rss", fresh_feed().replace("tin-", "moi-").replace(": tin", ": tin mới"))
    feedsvc("poll", config=config, check=True)
    upcoming = feedsvc("digest", "preview", "daily", "an@example.vn", config=config, check=True)
    assert upcoming.stdout.splitlines()[0].endswith(": 5 stories so far")
    assert "tin mới 4" in upcoming.stdout
    assert "Trẻ em Hà Tĩnh: tin 4\n" not in upcoming.stdout  # sent already, not again
    again = feedsvc("digest", "send", "daily", "--now", config=config, check=True)
    assert "1 sent" in again.stdout
    second = outbox(tmp_path)[-1]
    text = second.get_body(("plain",)).get_content()
    assert "tin mới 0" in text
    assert "Trẻ em Hà Tĩnh: tin 0\n" not in text


def test_a_test_email_reaches_the_server_marked_and_records_nothing(
    tmp_path: Path, feeds: ThreadedFeedServer
) -> None:
    with ThreadedSmtpServer() as smtp:
        extra = (
            "mail:\n  backend: smtp\n"
            f"  smtp: {{host: 127.0.0.1, port: {smtp.port}, starttls: false}}\n"
        )
        config = make_config(tmp_path, {"xa-hoi": feeds.url("/feeds/xa-hoi.rss")}, extra)
        feedsvc("poll", config=config, check=True)
        before = sqlite_counts(tmp_path)
        sent = feedsvc(
            "digest",
            "test",
            "daily",
            "--to",
            "bientap@example.vn",
            "--locale",
            "en",
            config=config,
            check=True,
        )
        assert "sent a test of the upcoming daily edition (5 stories)" in sent.stdout
        [received] = smtp.messages
    message = email.message_from_bytes(received.data, policy=email.policy.default)
    assert list(received.recipients) == ["bientap@example.vn"]
    assert str(message["Subject"]).startswith("[Test] ")
    assert message["List-Unsubscribe"].endswith("/test-email>")
    assert sqlite_counts(tmp_path) == before  # no delivery, no window moved


def sqlite_counts(tmp_path: Path) -> tuple[int, int]:
    import sqlite3

    with sqlite3.connect(tmp_path / "var" / "feedsvc.db") as conn:
        deliveries = conn.execute("SELECT count(*) FROM deliveries").fetchone()[0]
        subscribers = conn.execute("SELECT count(*) FROM subscribers").fetchone()[0]
    return deliveries, subscribers
