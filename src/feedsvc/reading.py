"""What a reader sees on the site: the newest stories per category, a category's stories
a page at a time, and one story.

A page of a list is named by a cursor, the position (display date, then id) of the
story it continues from, written as an opaque token: ``?before=`` the next page
(older stories), ``?after=`` the previous one (newer). A position is where a
story *is*, not how many came before it, so stories arriving while a reader pages
on never repeat one already shown or skip one not yet shown.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

from feedsvc._text import shorten
from feedsvc.config import Config
from feedsvc.errors import FeedsvcError
from feedsvc.publish.items import to_uri
from feedsvc.publish.urls import category_url, story_url
from feedsvc.store import Store
from feedsvc.store.reading import Position, Story, StoryCard
from feedsvc.stories.model import StoryContext

PAGE = 30  # stories per category page
FRONT = 5  # stories per category on the home page
ALL = "all"  # the category of every story, as /feeds/all.* is
LEDE = 200  # characters of a summary a list shows
_BABEL = {"vi": "vi", "en": "en_GB"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BadCursor(FeedsvcError):
    """A ``?before=``/``?after=`` value this site did not write (edited, cut, hostile)."""


@dataclass(frozen=True, slots=True)
class StoryList:
    """One page of a category's stories, newest first, and the cursors of its neighbours."""

    category_id: str
    cards: tuple[StoryCard, ...]
    newer: str | None  # ``?after=`` of the previous page; None on the first page
    older: str | None  # ``?before=`` of the next page; None on the last page


@dataclass(frozen=True, slots=True)
class FrontSection:
    """A category's newest stories on the home page."""

    category_id: str
    title: str
    cards: tuple[StoryCard, ...]


def encode(position: Position) -> str:
    """The cursor of ``position``: opaque to readers, stable for as long as the story is stored."""
    micros = (position.date - _EPOCH) // timedelta(microseconds=1)
    raw = f"{micros}.{position.entry_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> Position:
    """The position ``cursor`` names; raises :class:`BadCursor` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        micros, entry_id = (int(part) for part in raw.split("."))
        date = _EPOCH + timedelta(microseconds=micros)
    except (ValueError, binascii.Error, UnicodeError, OverflowError) as exc:
        raise BadCursor(f"not a page of this list: {cursor[:40]!r}") from exc
    if len(cursor) > 64 or not 0 <= entry_id < 2**63 or micros < 0:  # 2**63: BIGINT
        raise BadCursor(f"not a page of this list: {cursor[:40]!r}")
    return Position(date, entry_id)


def category_ids(config: Config) -> list[str]:
    """The categories that have a page: ``all`` and each configured one."""
    return [ALL, *(c.id for c in config.categories)]


def category_page(
    store: Store,
    category_id: str,
    *,
    before: str | None = None,
    after: str | None = None,
    size: int = PAGE,
) -> StoryList:
    """The page of ``category_id`` that ``before`` or ``after`` names (neither: the first).

    Raises:
        BadCursor: the cursor is not one this site wrote.
    """
    category = None if category_id == ALL else category_id
    if after:
        cards = store.reading.newer(category, decode(after), size + 1)
        if len(cards) > size:  # there is a page newer than this one
            shown = cards[1:]
            return StoryList(category_id, tuple(shown), encode(shown[0].position), after)
        before = None  # the first page: show it whole, not what is left of it
    position = decode(before) if before else None
    cards = store.reading.older(category, position, size + 1)
    shown = cards[:size]
    newer = (encode(shown[0].position) if shown else before) if position else None
    older = encode(shown[-1].position) if len(cards) > size else None
    return StoryList(category_id, tuple(shown), newer, older)


def front_page(store: Store, config: Config, size: int = FRONT) -> list[FrontSection]:
    """Each configured category with its newest ``size`` stories, in config order."""
    return [
        FrontSection(c.id, c.title, tuple(store.reading.older(c.id, None, size)))
        for c in config.categories
    ]


@dataclass(frozen=True, slots=True)
class StoryPage:
    """One story and what surrounds it (``store.stories``): its series' other parts,
    related stories ("Đọc thêm") and other outlets' reports ("Cũng đưa tin")."""

    story: Story
    around: StoryContext


def story(store: Store, entry_id: int) -> StoryPage | None:
    """The stored story ``entry_id`` with its surroundings, or None."""
    found = store.reading.story(entry_id)
    if found is None:
        return None
    return StoryPage(found, store.stories.story_context(entry_id))


def source_name(config: Config, card: StoryCard) -> str:
    """What a reader calls the story's source: config.yaml's title, the feed's, or its id."""
    titles = {s.id: s.title for s in config.sources if s.title}
    return titles.get(card.source_id) or card.source_title or card.source_id


def lede(card: StoryCard) -> str:
    """The start of the story's summary (plain text, as stored) as one line, for a list."""
    return shorten(" ".join(card.summary.split()), LEDE)


def original(card: StoryCard) -> str | None:
    """The link to the publisher's article, when it is an http(s) address."""
    return to_uri(card.link)


def thumbnail(card: StoryCard) -> str | None:
    """The story's image when it is served over https (pages allow no other remote image)."""
    image = to_uri(card.image)
    return image if image and image.startswith("https://") else None


def helpers(config: Config, locale: str) -> dict[str, Callable[..., Any]]:
    """What the story templates call: a story's addresses, source name, lede, thumbnail,
    and ``when(moment, size)``, a time in ``locale`` and the site's zone."""
    base, zone = config.site.base_url, ZoneInfo(config.site.timezone)

    def when(moment: datetime, size: str = "medium") -> str:
        return format_datetime(moment, size, tzinfo=zone, locale=_BABEL[locale])

    return {
        "story_url": lambda entry_id: story_url(base, entry_id),
        "category_url": lambda category_id, **cursor: category_url(base, category_id, **cursor),
        "source_name": lambda card: source_name(config, card),
        "lede": lede,
        "thumbnail": thumbnail,
        "original": original,
        "when": when,
    }
