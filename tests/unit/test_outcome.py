"""A poll's outcome decides when a source is tried again: never silently abandoned."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from feedsvc.errors import ConnectError, Gone, HTTPStatusError
from feedsvc.ingest import outcome
from feedsvc.model import FetchResult, ParsedFeed, Source, SourceStatus
from tests.conftest import NOW

INTERVAL = timedelta(minutes=15)
MAX = timedelta(hours=6)
SOURCE = Source(id="s", config_url="https://x.vn/a.xml", url="https://x.vn/a.xml")


def fail(source: Source, error: Exception) -> dict[str, object]:
    return outcome.failed(source, error, interval=INTERVAL, max_backoff=MAX, now=NOW)  # type: ignore[arg-type]


def test_errors_back_off_exponentially_up_to_the_cap() -> None:
    source, delays = SOURCE, []
    for _ in range(8):
        values = fail(source, ConnectError("connection refused"))
        delays.append(values["next_poll_at"] - NOW)  # type: ignore[operator]
        source = replace(source, error_count=values["error_count"])
    assert delays[:4] == [INTERVAL, INTERVAL * 2, INTERVAL * 4, INTERVAL * 8]
    assert delays[-1] == MAX
    assert values["status"] == SourceStatus.BACKOFF
    assert values["last_error"] == "connection refused"


def test_first_error_is_error_then_backoff() -> None:
    assert fail(SOURCE, ConnectError("x"))["status"] == SourceStatus.ERROR


def test_retry_after_is_honoured_when_later_than_backoff() -> None:
    later = NOW + timedelta(hours=2)
    values = fail(SOURCE, HTTPStatusError(429, "HTTP 429 Too Many Requests", retry_after=later))
    assert (values["next_poll_at"], values["retry_after"]) == (later, later)
    assert values["status"] == SourceStatus.BACKOFF


def test_gone_retires_the_source() -> None:
    values = fail(SOURCE, Gone(410, "HTTP 410 Gone from x.vn"))
    assert values["status"] == SourceStatus.RETIRED
    assert values["next_poll_at"] is None
    assert values["last_error"] == "HTTP 410 Gone from x.vn"


def test_success_resets_errors_and_follows_permanent_redirects() -> None:
    failing = Source(
        id="s", config_url=SOURCE.url, url=SOURCE.url, error_count=3, last_error="timed out"
    )
    fetched = FetchResult(
        url="https://x.vn/new.xml",
        status=200,
        body=b"<rss/>",
        headers={},
        etag='"v2"',
        permanent_url="https://x.vn/new.xml",
    )
    feed = ParsedFeed(title="Báo", link="https://x.vn", entries=(), warning="bare &")
    values = outcome.succeeded(failing, fetched, feed, body_hash="h", interval=INTERVAL, now=NOW)
    assert values["status"] == SourceStatus.OK
    assert (values["error_count"], values["last_error"]) == (0, None)
    assert values["url"] == "https://x.vn/new.xml"
    assert values["next_poll_at"] == NOW + INTERVAL
    assert values["warning"] == "bare &"


def test_not_modified_keeps_the_validators() -> None:
    known = Source(id="s", config_url=SOURCE.url, url=SOURCE.url, etag='"v1"', last_modified="x")
    fetched = FetchResult(url=SOURCE.url, status=304, body=None, headers={})
    values = outcome.succeeded(known, fetched, None, body_hash=None, interval=INTERVAL, now=NOW)
    assert "etag" not in values  # kept as stored
    assert "last_modified" not in values
    assert "url" not in values


def test_a_steady_not_modified_writes_only_the_poll_times() -> None:
    steady = Source(
        id="s",
        config_url=SOURCE.url,
        url=SOURCE.url,
        status=SourceStatus.OK,
        etag='"v1"',
        first_polled_at=NOW - INTERVAL,
    )
    fetched = FetchResult(url=SOURCE.url, status=304, body=None, headers={}, etag='"v1"')
    values = outcome.succeeded(steady, fetched, None, body_hash=None, interval=INTERVAL, now=NOW)
    assert values == {"last_polled_at": NOW, "next_poll_at": NOW + INTERVAL}
    rotated = FetchResult(url=SOURCE.url, status=304, body=None, headers={}, etag='"v2"')
    values = outcome.succeeded(steady, rotated, None, body_hash=None, interval=INTERVAL, now=NOW)
    assert values["etag"] == '"v2"'
