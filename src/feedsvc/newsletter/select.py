"""Which entries go into one subscriber's digest. Pure.

A digest holds the entries *first seen* in its window — publishers' dates are
often wrong, so they decide the order, never the selection — in the
subscriber's categories, grouped by category in config order, each story once
(an entry filed under two of their categories, or the same story from two
sources, appears in the first category only), newest first, at most
``max_per_category`` per category. A new source's backlog and entries that were
only edited in the window are not new.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from feedsvc.config import Category
from feedsvc.model import Digest, DigestSection, Filed
from feedsvc.stories.exact import dedupe


def select_digest(
    candidates: Sequence[Filed],
    *,
    categories: Sequence[Category],
    wanted: Collection[str],
    since: datetime,
    until: datetime,
    max_per_category: int,
) -> Digest:
    """The digest for a subscriber of ``wanted`` categories over ``(since, until]``."""
    fresh = [
        item
        for item in candidates
        if since < item.entry.first_seen <= until
        and not item.entry.backlog
        and item.categories & set(wanted)
    ]
    stories = {entry.id for entry in dedupe([item.entry for item in fresh])}
    placed: set[int] = set()
    sections = []
    for category in categories:
        if category.id not in wanted:
            continue
        mine = [
            item.entry
            for item in fresh
            if category.id in item.categories
            and item.entry.id in stories
            and item.entry.id not in placed
        ]
        if not mine:
            continue
        mine.sort(key=lambda entry: (entry.date, entry.id), reverse=True)
        placed.update(entry.id for entry in mine)
        shown, rest = tuple(mine[:max_per_category]), tuple(mine[max_per_category:])
        sections.append(DigestSection(category.id, category.title, shown, len(rest), rest))
    return Digest(tuple(sections), since=since, until=until)
