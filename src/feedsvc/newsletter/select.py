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

A subscriber who follows topics (``newsletter.topics``) gets a first section,
"Your topics", of the window's new stories that match any topic, from *every*
category, not only their own: following a word is asking for it wherever it is
filed. Those stories move there: the category sections leave them out, so each
story is still in the email once. It is capped like a category section.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, MutableMapping, Sequence
from datetime import datetime

from feedsvc.config import Category
from feedsvc.model import TOPICS_SECTION, Digest, DigestSection, DigestStory, Entry, Filed
from feedsvc.newsletter import topics as topic_rules
from feedsvc.stories.clusters import one_per_story
from feedsvc.stories.exact import dedupe, story_ids
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
    topics: Sequence[str] = (),
    folded: MutableMapping[int, str] | None = None,
) -> Digest:
    """The digest for a subscriber of ``wanted`` categories over ``(since, until]``.

    Args:
        stories: the candidates' story contexts by entry id (absent: not detected).
        topics: folded phrases (``topics.phrases``) of the subscriber's topics.
        folded: each entry's folded words by id, kept across calls of one run.
    """
    window = list(_window(candidates, since, until))
    fresh = [item for item in window if item.categories & set(wanted)]
    kept = {entry.id for entry in one_per_story(dedupe([item.entry for item in fresh]), stories)}
    sections: list[DigestSection] = []
    decorations: dict[int, DigestStory] = {}
    moved: set[int] = set()  # every copy of the topics section's stories
    placed: set[int] = set()
    if topics:
        section, moved = _topic_section(window, topics, folded or {}, max_per_category, stories)
        if section.entries:
            sections.append(section)
            placed.update(entry.id for entry in section.entries + section.rest)
    for category in categories:
        if category.id not in wanted:
            continue
        mine = [
            item.entry
            for item in fresh
            if category.id in item.categories
            and item.entry.id in kept
            and item.entry.id not in placed
            and item.entry.id not in moved
        ]
        if not mine:
            continue
        mine.sort(key=lambda entry: (entry.date, entry.id), reverse=True)
        mine = _series_together(mine, stories, decorations)
        placed.update(entry.id for entry in mine)
        sections.append(_section(category.id, category.title, mine, max_per_category))
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


def _window(candidates: Sequence[Filed], since: datetime, until: datetime) -> Iterator[Filed]:
    """The candidates first seen in ``(since, until]``, backlog left out."""
    for item in candidates:
        if since < item.entry.first_seen <= until and not item.entry.backlog:
            yield item


def _topic_section(
    window: Sequence[Filed],
    topics: Sequence[str],
    folded: MutableMapping[int, str],
    max_per_category: int,
    stories: Mapping[int, StoryContext],
) -> tuple[DigestSection, set[int]]:
    """The "Your topics" section, and the ids of every copy of its stories (to leave out of
    the category sections). A story matches when any of its copies does, exact copies
    and other outlets' reports (a cluster) alike; its first copy is shown."""
    entries = [item.entry for item in window]
    story = story_ids(entries)
    cluster = {e.id: _cluster(stories, e) for e in entries}
    hits = [e for e in entries if topic_rules.matches(e, topics, folded)]
    matched = {story[e.id] for e in hits}
    clusters = {cluster[e.id] for e in hits} - {None}
    moved = {
        entry_id
        for entry_id, kept in story.items()
        if kept in matched or cluster[entry_id] in clusters
    }
    shown = one_per_story([e for e in entries if e.id in moved and story[e.id] == e.id], stories)
    shown.sort(key=lambda entry: (entry.date, entry.id), reverse=True)
    return _section(TOPICS_SECTION, "", shown, max_per_category), moved


def _cluster(stories: Mapping[int, StoryContext], entry: Entry) -> int | None:
    story = stories.get(entry.id)
    return None if story is None else story.cluster_id


def _section(category_id: str, title: str, mine: list[Entry], limit: int) -> DigestSection:
    """A section of ``mine`` in the order given (newest first, a series' parts together)."""
    shown, rest = tuple(mine[:limit]), tuple(mine[limit:])
    return DigestSection(category_id, title, shown, len(rest), rest)
