"""What a poll's outcome does to its source: the next poll time, backoff, retirement.

Pure: takes the source as it was, what happened and ``now``; returns the
columns to store. A source is never silently abandoned: every failure leaves a
status, a one-line ``last_error`` and a ``next_poll_at`` saying when it is tried
again (only 410 Gone retires it, and ``feedsvc poll --force`` still reaches it).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from feedsvc._text import clean_line
from feedsvc.errors import FeedsvcError, Gone
from feedsvc.model import FetchResult, ParsedFeed, Source, SourceStatus


def succeeded(
    source: Source,
    fetched: FetchResult,
    feed: ParsedFeed | None,
    *,
    body_hash: str | None,
    interval: timedelta,
    now: datetime,
) -> dict[str, Any]:
    """The columns a successful fetch changes; ``feed`` is None when nothing was parsed.

    (A 304, or a body with the same bytes as last time.) Columns that keep the
    value ``source`` has are left out, so a steady 304 writes just the two poll
    times: most polls of most sources are that, thousands per interval.
    """
    values: dict[str, Any] = {
        "status": SourceStatus.OK.value,
        "last_error": None,
        "error_count": 0,
        "retry_after": None,
        "last_polled_at": now,
        "next_poll_at": now + interval,
        "first_polled_at": source.first_polled_at or now,
        "etag": fetched.etag or (source.etag if fetched.not_modified else None),
        "last_modified": fetched.last_modified
        or (source.last_modified if fetched.not_modified else None),
    }
    if body_hash is not None:
        values["body_hash"] = body_hash
    if fetched.permanent_url:
        values["url"] = fetched.permanent_url
    if feed is not None:
        values["warning"] = feed.warning
        values["site_url"] = feed.link
        if feed.title:
            values["title"] = feed.title
    return {
        column: value
        for column, value in values.items()
        if column in _POLL_TIMES or getattr(source, column, _NOT_KEPT) != value
    }


_POLL_TIMES = frozenset({"last_polled_at", "next_poll_at"})
_NOT_KEPT = object()  # a column Source does not carry (site_url): always written


def failed(
    source: Source,
    error: FeedsvcError,
    *,
    interval: timedelta,
    max_backoff: timedelta,
    now: datetime,
) -> dict[str, Any]:
    """Columns after a failed poll: exponential backoff, Retry-After honoured, 410 retires."""
    count = source.error_count + 1
    values: dict[str, Any] = {
        "last_error": one_line(error),
        "error_count": count,
        "last_polled_at": now,
    }
    if isinstance(error, Gone):
        return {**values, "status": SourceStatus.RETIRED.value, "next_poll_at": None}
    delay = min(interval * 2 ** (count - 1), max(max_backoff, interval))
    retry_after = getattr(error, "retry_after", None)
    next_poll = now + delay
    if retry_after is not None and retry_after > next_poll:
        next_poll = retry_after
    backing_off = count > 1 or retry_after is not None
    return {
        **values,
        "status": (SourceStatus.BACKOFF if backing_off else SourceStatus.ERROR).value,
        "next_poll_at": next_poll,
        "retry_after": retry_after,
    }


def one_line(error: BaseException) -> str:
    """An exception as one line of at most 300 characters, for logs and status pages.

    Messages quote what servers sent (a reason phrase, a header): control characters
    are dropped, so no escape sequence is stored to reach a terminal later.
    """
    text = clean_line(str(error)) or type(error).__name__
    return text if len(text) <= 300 else text[:299] + "…"
