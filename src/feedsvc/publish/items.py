"""Entries as the publish stage shows them: cleaned, XML-safe, with stable ids.

Every writer (RSS, Atom, JSON Feed) lays out the same :class:`Item`, so an
entry is cleaned once however many formats are written: text rid of what XML
1.0 cannot carry (a stray ``\\x00`` in one title must not fail the whole feed),
links made ASCII http(s) URIs, dates aware UTC to the second, and an id that
never changes.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit

from feedsvc import i18n
from feedsvc._text import clean_line, clean_text, remove_invalid_chars, shorten
from feedsvc.config import Category, Site
from feedsvc.model import Enclosure, Entry
from feedsvc.publish.urls import feed_url
from feedsvc.stories.model import StoryContext, StoryRef

Format = Literal["rss", "atom", "json"]
XmlFormat = Literal["rss", "atom"]  # the formats feedgen writes
MEDIA_TYPES: dict[str, str] = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "json": "application/feed+json",
}
_UNTITLED = {"vi": "(Không có tiêu đề)", "en": "(Untitled)"}
# A URI as the W3C validator accepts it (RFC 2396 characters), and a bare media type.
_URI = re.compile(r"https?://[0-9A-Za-z;/?:@&=+$.\-_!~*'()%,#]+", re.IGNORECASE)
_URI_SAFE = "/?:@&=+$-_.!~*'(),;%#"
_MEDIA_TYPE = re.compile(r'[^\s()<>,;:\\"/\[\]?=]+/[^\s()<>,;:\\"/\[\]?=]+')


@dataclass(frozen=True, slots=True)
class EntryContext:
    """Everything of a feed that an entry's element shows: all an :class:`Item` may read.

    An entry's rendered element is cached per (entry, revision, context)
    (``publish.fragments``), so :func:`to_item` takes only this, never the whole
    feed: a new input of an entry's element must come in through here, and then
    it is part of the cache key.
    """

    tag_authority: str  # mints the entry's tag: id (from site.base_url)
    language: str  # names an untitled entry


@dataclass(frozen=True, slots=True)
class FeedInfo:
    """What a generated feed says about itself (everything but its entries).

    ``tag_authority`` is the host that mints ``tag:`` ids for entries whose
    source gave no permalink; it comes from ``site.base_url``.
    """

    id: str  # the category id, or "all"
    title: str
    description: str
    site_url: str
    language: str
    tag_authority: str
    author: str  # the publisher, named at feed level (Atom requires an author)
    hub: str | None = None

    @classmethod
    def for_category(cls, site: Site, category: Category, hub: str | None = None) -> FeedInfo:
        """The feed of one configured category."""
        return cls._make(site, category.id, category.title, category.description, hub)

    @classmethod
    def for_all(cls, site: Site, hub: str | None = None) -> FeedInfo:
        """The feed of every entry, whatever its category."""
        return cls._make(site, "all", site.title, "", hub)

    @classmethod
    def _make(cls, site: Site, id: str, title: str, description: str, hub: str | None) -> FeedInfo:
        title = clean_line(title) or id
        return cls(
            id=id,
            title=title,
            description=clean_line(description) or title,  # RSS requires a description
            site_url=to_uri(site.base_url) or site.base_url,
            language=site.language,
            tag_authority=tag_authority(site.base_url),
            author=clean_line(site.title) or title,
            hub=to_uri(hub),
        )

    @property
    def entry_context(self) -> EntryContext:
        """What this feed's entries' elements depend on (their cache key's feed part)."""
        return EntryContext(self.tag_authority, self.language)

    def self_url(self, fmt: Format) -> str:
        """Where this feed is served in ``fmt``: its ``rel="self"`` link."""
        return feed_url(self.site_url, self.id, fmt)


@dataclass(frozen=True, slots=True)
class ItemLink:
    """Another story as an item names it: its item id, title, link and source."""

    id: str
    title: str
    url: str | None
    source: str


@dataclass(frozen=True, slots=True)
class ItemSeries:
    """The series an item is a part of: the first part's item id, its title, this
    item's part, and every part's item id in part order."""

    id: str
    title: str
    part: int
    parts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ItemStory:
    """What an item shows of its story (``stories``): its series, its related stories
    ("Đọc thêm") and the other outlets that reported it."""

    series: ItemSeries | None = None
    related: tuple[ItemLink, ...] = ()
    also_reported_by: tuple[ItemLink, ...] = ()
    language: str = "vi"  # of the labels written into the content

    def __bool__(self) -> bool:
        return bool(self.series or self.related or self.also_reported_by)

    def content_html(self) -> str:
        """The related stories and the other outlets as HTML, for RSS and Atom content."""
        _ = i18n.translator(self.language)
        parts = []
        if self.related:
            links = "".join(f"<li>{_link(r)} ({html.escape(r.source)})</li>" for r in self.related)
            parts.append(f"<p><strong>{_('Read more')}</strong></p><ul>{links}</ul>")
        if self.also_reported_by:
            links = ", ".join(
                f'<a href="{html.escape(r.url)}">{html.escape(r.source)}</a>'
                if r.url
                else html.escape(r.source)
                for r in self.also_reported_by
            )
            parts.append(f"<p>{_('Also reported by')}: {links}</p>")
        return "".join(parts)


def _link(ref: ItemLink) -> str:
    title = html.escape(ref.title)
    return f'<a href="{html.escape(ref.url)}">{title}</a>' if ref.url else title


@dataclass(frozen=True, slots=True)
class Item:
    """One entry as every format shows it: clean, XML-safe, with a stable id."""

    id: str
    permalink: bool  # ``id`` is the article's own URL
    title: str
    link: str | None
    author: str | None
    categories: tuple[str, ...]
    content_html: str  # sanitized HTML, possibly empty
    summary: str  # plain text, possibly empty
    published: datetime
    updated: datetime
    enclosures: tuple[Enclosure, ...]
    image: str | None
    story: ItemStory = ItemStory()


def to_item(entry: Entry, context: EntryContext, story: StoryContext | None = None) -> Item:
    """``entry`` cleaned and identified for publishing in a feed of ``context``, with
    what ``story`` says of its series, related stories and other outlets."""
    link = to_uri(entry.link)
    guid = to_uri(entry.guid) if entry.guid_is_permalink else None
    published = utc(entry.date)
    summary = clean_text(entry.summary).strip()
    title = clean_line(entry.title) or shorten(" ".join(summary.split()), 100)
    return Item(
        id=item_id(entry, context.tag_authority),
        permalink=guid is not None,
        title=title or _UNTITLED.get(context.language, _UNTITLED["en"]),
        link=link,
        author=clean_line(entry.author or "") or None,
        categories=tuple(dict.fromkeys(t for t in map(clean_line, entry.categories) if t)),
        content_html=remove_invalid_chars(entry.content).strip(),
        summary=summary,
        published=published,
        updated=max([published, *_later_dates(entry)]),
        enclosures=tuple(_enclosures(entry.enclosures)),
        image=to_uri(entry.image),
        story=item_story(story, context) if story else ItemStory(),
    )


def item_story(story: StoryContext, context: EntryContext) -> ItemStory:
    """What an item shows of ``story``, every entry named by its item id."""
    series = None
    if story.series is not None and len(story.series.parts) > 1:
        parts = story.series.parts
        series = ItemSeries(
            id=item_id(parts[0][1].entry, context.tag_authority),
            title=clean_line(story.series.title),
            part=story.series.part,
            parts=tuple(item_id(ref.entry, context.tag_authority) for _, ref in parts),
        )
    return ItemStory(
        series=series,
        related=tuple(_item_link(ref, context) for ref in story.related),
        also_reported_by=tuple(_item_link(ref, context) for ref in story.also_reported_by),
        language=context.language,
    )


def _item_link(ref: StoryRef, context: EntryContext) -> ItemLink:
    entry = ref.entry
    return ItemLink(
        id=item_id(entry, context.tag_authority),
        title=clean_line(entry.title) or _UNTITLED.get(context.language, _UNTITLED["en"]),
        url=to_uri(entry.link),
        source=clean_line(ref.source) or entry.source_id,
    )


def item_id(entry: Entry, authority: str) -> str:
    """The id of ``entry``'s item: its guid when that is a permalink, else :func:`entry_id`."""
    guid = to_uri(entry.guid) if entry.guid_is_permalink else None
    return guid or entry_id(entry, authority)


def entry_id(entry: Entry, authority: str) -> str:
    """A ``tag:`` URI (RFC 4151) for ``entry`` that never changes.

    Built only from what never changes for a stored entry: its source, its
    identity and the day it was first seen. Edits, re-renders and moves
    between categories keep it.
    """
    digest = hashlib.sha1(entry.identity.encode(), usedforsecurity=False).hexdigest()
    day = utc(entry.first_seen).date().isoformat()
    return f"tag:{authority},{day}:entry/{entry.source_id}/{digest}"


def _later_dates(entry: Entry) -> list[datetime]:
    """The publisher's update date, and ours when we saw the entry edited."""
    dates = [entry.updated] + ([entry.changed] if entry.revision else [])
    return [utc(d) for d in dates if d is not None]


def _enclosures(enclosures: Sequence[Enclosure]) -> list[Enclosure]:
    result = []
    for enclosure in enclosures:
        url = to_uri(enclosure.url)
        if url:
            media_type = enclosure.type if _MEDIA_TYPE.fullmatch(enclosure.type) else ""
            length = enclosure.length if enclosure.length and enclosure.length > 0 else None
            result.append(Enclosure(url, media_type, length))
    return result


def to_uri(url: str | None) -> str | None:
    """``url`` as an absolute http(s) URI in ASCII, or None.

    Feeds carry links from publishers as given, but an IRI with Vietnamese
    letters or spaces is not a valid RSS link, so those are percent-encoded
    (UTF-8) and an internationalized host is IDNA-encoded. Any other scheme
    (``javascript:``, ``data:``) is dropped: no link in our feeds runs code.
    """
    url = clean_line(url or "")
    if _URI.fullmatch(url):
        return url
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").encode("idna").decode("ascii")
        port = parts.port
    except (ValueError, UnicodeError):
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    path, query, fragment = (quote(p, safe=_URI_SAFE) for p in parts[2:])
    return urlunsplit((parts.scheme.lower(), netloc, path or "/", query, fragment))


def tag_authority(base_url: str) -> str:
    """The host of ``base_url`` as a ``tag:`` authority name (RFC 4151: a DNS name)."""
    try:
        host = (urlsplit(base_url).hostname or "").encode("idna").decode("ascii")
    except (ValueError, UnicodeError):
        host = ""
    return re.sub(r"[^a-z0-9.-]", "-", host.lower()) or "localhost"


def utc(moment: datetime) -> datetime:
    """Aware UTC to the second: every format shows the same instant the same way."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def newest_first(item: Item) -> tuple[float, str]:
    """Sort key: newest ``published`` first, ties broken by id so order is stable."""
    return (-item.published.timestamp(), item.id)
