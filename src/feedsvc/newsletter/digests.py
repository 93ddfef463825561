"""What a digest holds: each subscriber's window in a period (the one place the window
rule meets the store), and the digests of one send run, each selected once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

from feedsvc.config import Config
from feedsvc.model import Digest, Filed, Subscriber, SubscriberStatus
from feedsvc.newsletter.periods import latest_periods
from feedsvc.newsletter.select import select_digest
from feedsvc.newsletter.topics import phrases
from feedsvc.newsletter.window import Window, next_window
from feedsvc.store import Store
from feedsvc.stories.model import StoryContext


class Digests:
    """Subscribers' digests for one sending run.

    Each window's new entries are read once, and each distinct (categories,
    topics, window) digest is selected once: thousands of subscribers share a few
    dozen. Subscribers who follow no topics share by (categories, window) alone;
    topics (folded) make their own key, and each entry is folded once a run.
    """

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self._candidates: dict[tuple[datetime, datetime], list[Filed]] = {}
        self._stories: dict[tuple[datetime, datetime], dict[int, StoryContext]] = {}
        self._selected: dict[
            tuple[frozenset[str], tuple[str, ...], datetime, datetime], Digest
        ] = {}
        self._folded: dict[int, str] = {}

    def for_subscriber(self, subscriber: Subscriber, since: datetime, until: datetime) -> Digest:
        """The digest ``subscriber`` gets for ``(since, until]``."""
        followed = phrases(subscriber.topics) if subscriber.topics else ()
        key = (frozenset(subscriber.categories), followed, since, until)
        digest = self._selected.get(key)
        if digest is None:
            window = (since, until)
            if window not in self._candidates:
                candidates = self.store.categories.first_seen_between(since, until)
                self._candidates[window] = candidates
                self._stories[window] = self.store.stories.contexts(
                    [item.entry.id for item in candidates]
                )
            digest = self._selected[key] = select_digest(
                self._candidates[window],
                categories=self.config.categories,
                wanted=key[0],
                since=since,
                until=until,
                max_per_category=self.config.newsletter.max_items_per_category,
                stories=self._stories[window],
                topics=followed,
                folded=self._folded,
            )
        return digest


def period_windows(
    config: Config,
    store: Store,
    schedule: str,
    now: datetime,
    subscribers: Sequence[Subscriber] | None = None,
    *,
    period: datetime | None = None,
) -> tuple[datetime, list[tuple[Subscriber, Window | None]]]:
    """A period of ``schedule`` and each subscriber's window in it (None: an earlier
    digest of theirs is still open). What plan, preview and the dry run all show.

    Args:
        subscribers: default: the schedule's active ones.
        period: default: the latest fire time at ``now``; a period sent "now" gives
            its own time (a first digest then starts at the latest fire time).
    """
    cron = config.newsletter.cron(schedule)
    previous, latest = latest_periods(cron, config.site.timezone, now)
    if period is not None:
        previous = min(latest, period)
    if subscribers is None:
        subscribers = store.subscribers.list(schedule=schedule, status=SubscriberStatus.ACTIVE)
    histories = store.deliveries.histories(schedule)
    until = period or latest
    return until, [(s, next_window(histories.get(s.id), previous, until)) for s in subscribers]


def local_time(config: Config, moment: datetime) -> str:
    """``Thứ Năm 03/12 07:00 (UTC+7)``: a time as the newsroom reads it."""
    local = moment.astimezone(ZoneInfo(config.site.timezone))
    babel = "vi" if config.site.language == "vi" else "en_GB"
    text = format_datetime(local, "EEEE dd/MM HH:mm", locale=babel)
    offset = int((local.utcoffset() or timedelta(0)).total_seconds()) // 60
    hours, minutes = divmod(abs(offset), 60)
    sign = "-" if offset < 0 else "+"
    return f"{text} (UTC{sign}{hours}{f':{minutes:02d}' if minutes else ''})"
