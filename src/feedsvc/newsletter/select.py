"""Which entries go into one subscriber's digest. Pure.

A digest holds the entries *first seen* in its window — publishers' dates are
often wrong, so they decide the order, never the selection — in the
subscriber's categories, grouped by category in config order, each story once
(an entry filed under two of their categories, or the same story from two
sources, appears in the first category only), newest first, at most
``max_per_category`` per category. A new source's backlog and entries that were
only edited in the window are not new.

Stories (``stories``, from ``store.stories``): a story several outlets reported
is shown once, from the outlet that published it first, with the others as
"Cũng đưa tin"; the parts of one series in a section are shown together, in
part order, where the newest of them would be; each entry keeps up to three
related stories ("Đọc thêm").
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from feedsvc.config import Category
from feedsvc.model import Digest, DigestSection, DigestStory, Entry, Filed
from feedsvc.stories.clusters import one_per_story
from feedsvc.stories.exact import dedupe
from feedsvc.stories.model import StoryContext
from feedsvc.stories.related import RELATED_LIMIT

_NO_STORIES: Mapping[int, StoryContext] = {}


def select_digest(
    candidates: Sequence[Filed],
    *,
    categories: Sequence[Category],
    wanted: Collection[str],
    since: datetime,
    until: datetime,
    max_per_category: int,
    stories: Mapping[int, StoryContext] = _NO_STORIES,
) -> Digest:
    """The digest for a subscriber of ``wanted`` categories over ``(since, until]``.

    Args:
        stories: the candidates' story contexts by entry id (absent: not detected).
    """
    fresh = [
        item
        for item in candidates
        if since < item.entry.first_seen <= until
        and not item.entry.backlog
        and item.categories & set(wanted)
    ]
    kept = {entry.id for entry in one_per_story(dedupe([item.entry for item in fresh]), stories)}
    placed: set[int] = set()
    sections = []
    decorations: dict[int, DigestStory] = {}
    for category in categories:
        if category.id not in wanted:
            continue
        mine = [
            item.entry
            for item in fresh
            if category.id in item.categories
            and item.entry.id in kept
            and item.entry.id not in placed
        ]
        if not mine:
            continue
        mine.sort(key=lambda entry: (entry.date, entry.id), reverse=True)
        mine = _series_together(mine, stories, decorations)
        placed.update(entry.id for entry in mine)
        shown, rest = tuple(mine[:max_per_category]), tuple(mine[max_per_category:])
        sections.append(DigestSection(category.id, category.title, shown, len(rest), rest))
    for entry_id in placed:
        story = stories.get(entry_id)
        if story is not None and (story.related or story.also_reported_by):
            decorations[entry_id] = _decorated(decorations.get(entry_id), story)
    return Digest(tuple(sections), since=since, until=until, stories=decorations)


def _series_together(
    entries: list[Entry],
    stories: Mapping[int, StoryContext],
    decorations: dict[int, DigestStory],
) -> list[Entry]:
    """``entries`` (newest first) with each series' parts together in part order, where
    its newest part was; the parts' places go into ``decorations``."""
    groups: dict[int, list[tuple[int, Entry]]] = {}
    for entry in entries:
        series = _series(stories, entry)
        if series is not None:
            groups.setdefault(series[0], []).append((series[1], entry))
    ordered: list[Entry] = []
    done: set[int] = set()
    for entry in entries:
        if entry.id in done:
            continue
        series = _series(stories, entry)
        group = groups.get(series[0]) if series else None
        if group is None or len(group) < 2:
            ordered.append(entry)
            done.add(entry.id)
            continue
        members = sorted(group, key=lambda pair: (pair[0], pair[1].date, pair[1].id))
        first = members[0][1].id
        numbers = tuple(part for part, _ in members)
        for part, member in members:
            decorations[member.id] = DigestStory(
                part=part,
                parts=numbers if member.id == first else (),
                continues=None if member.id == first else first,
            )
            ordered.append(member)
            done.add(member.id)
    return ordered


def _series(stories: Mapping[int, StoryContext], entry: Entry) -> tuple[int, int] | None:
    story = stories.get(entry.id)
    if story is None or story.series is None:
        return None
    return story.series.id, story.series.part


def _decorated(place: DigestStory | None, story: StoryContext) -> DigestStory:
    place = place or DigestStory()
    return DigestStory(
        part=place.part,
        parts=place.parts,
        continues=place.continues,
        related=story.related[:RELATED_LIMIT],
        also_reported_by=story.also_reported_by,
    )
