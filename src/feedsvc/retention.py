"""Daily retention: what ``retention.days`` and ``feeds.max_items`` let go.

Entries older than the cutoff go (each feed keeps its newest ``max_items``), with
their cached fragments; fragments of entries no feed can show any more go too;
and so do editions of periods before the cutoff, whose pages would otherwise
outlive the stories they list. ``feedsvc run`` calls :func:`retain` once a day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from feedsvc.config import Config
from feedsvc.store import Store


@dataclass(frozen=True, slots=True)
class Retained:
    before: datetime
    entries: int
    fragments: int
    editions: int


def retain(config: Config, store: Store, now: datetime) -> Retained:
    cutoff = now - timedelta(days=config.retention.days)
    entries = store.entries.purge(cutoff, config.feeds.max_items)
    # Feeds read twice max_items before dedupe: those may all be shown.
    fragments = store.fragments.prune(config.feeds.max_items * 2)
    editions = store.editions.purge(cutoff)
    return Retained(cutoff, entries, fragments, editions)
