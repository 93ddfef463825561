"""A category's entries as an RSS 2.0, Atom 1.0 or JSON Feed 1.1 document.

Pure and deterministic: the same entries and ``now`` give the same bytes, so a
document's ETag changes only when its content does. The only time read is
``now``, and only for an empty feed; otherwise the feed is as recent as its
newest entry (an edit seen later makes it newer).

Entries are first made ``Item`` objects (``publish.items``: cleaned and
identified once for all formats). RSS and Atom are then built with feedgen;
what feedgen lacks or gets wrong is added by :class:`_FeedExtras` and
:class:`_EntryExtras` (see their docstrings). JSON Feed has its own small
writer in ``jsonfeed``.

:func:`render_all` writes whole documents; the publisher assembles the same
bytes from a document's :func:`head` and each entry's element
(:func:`entry_element`), cached between renders (``publish.fragments``).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from feedgen.entry import FeedEntry
from feedgen.feed import FeedGenerator
from feedgen.util import xml_elem

from feedsvc.model import Enclosure, Entry
from feedsvc.publish import jsonfeed
from feedsvc.publish.items import (
    MEDIA_TYPES,
    FeedInfo,
    Format,
    Item,
    XmlFormat,
    newest_first,
    to_item,
    utc,
)
from feedsvc.publish.urls import FEED_STYLESHEET
from feedsvc.stories.model import StoryContext

__all__ = ["MEDIA_TYPES", "FeedInfo", "Format", "render", "render_all"]

_ATOM = "http://www.w3.org/2005/Atom"
_MEDIA = "http://search.yahoo.com/mrss/"
_DC = "http://purl.org/dc/elements/1.1/"
_GENERATOR = "feedsvc"
_OCTETS = "application/octet-stream"
_STYLESHEET = f'<?xml-stylesheet type="text/xsl" href="{FEED_STYLESHEET}"?>\n'.encode()


def render(
    fmt: Format,
    feed: FeedInfo,
    entries: Sequence[Entry],
    now: datetime,
    stories: Mapping[int, StoryContext] | None = None,
) -> bytes:
    """The feed document in ``fmt``: every given entry, newest first.

    The caller chooses the entries (at most ``feeds.max_items``, deduplicated).
    To write several formats of one feed, :func:`render_all` cleans each entry
    once instead of once per format.

    Args:
        fmt: ``rss`` (RSS 2.0), ``atom`` (Atom 1.0) or ``json`` (JSON Feed 1.1).
        feed: the feed's own title, links and language.
        entries: the entries to show, in any order.
        now: the time to give an empty feed as its last update (aware).
        stories: each entry's story (``store.stories``) by entry id: its series,
            related stories and other outlets.
    """
    return render_all((fmt,), feed, entries, now, stories)[fmt]


def render_all(
    formats: Iterable[Format],
    feed: FeedInfo,
    entries: Sequence[Entry],
    now: datetime,
    stories: Mapping[int, StoryContext] | None = None,
) -> dict[Format, bytes]:
    """The feed document in each of ``formats``, as :func:`render` writes it (with each
    entry's story from ``stories``, by entry id)."""
    context = feed.entry_context
    stories = stories or {}
    items = sorted((to_item(e, context, stories.get(e.id)) for e in entries), key=newest_first)
    updated = max((i.updated for i in items), default=utc(now))
    return {fmt: _write(fmt, feed, items, updated) for fmt in formats}


def _write(fmt: Format, feed: FeedInfo, items: Sequence[Item], updated: datetime) -> bytes:
    if fmt == "json":
        return jsonfeed.render_json(feed, items)
    generator = _generator(fmt, feed, items, updated)
    return _styled(bytes(generator.rss_str() if fmt == "rss" else generator.atom_str()))


def _styled(document: bytes) -> bytes:
    """``document`` with the style sheet a browser renders it with (``static/feed.xsl``).

    The processing instruction goes right after the XML declaration; feed readers
    and validators ignore it, a browser shows the feed as a page of its stories.
    """
    declaration, newline, rest = document.partition(b"\n")
    if not declaration.startswith(b"<?xml ") or not newline:
        raise RuntimeError(f"unexpected start of a feed document: {document[:100]!r}")
    return declaration + newline + _STYLESHEET + rest


def head(fmt: XmlFormat, feed: FeedInfo, updated: datetime) -> bytes:
    """The ``fmt`` document of ``feed`` with no entries, ``updated`` as its last update.

    feedgen appends the entries after every other child of the channel (RSS) or
    feed (Atom), so a whole document is this up to its closing tags, the
    entries, then the closing tags (``publish.fragments`` assembles it so).
    """
    return _write(fmt, feed, (), updated)


def entry_element(fmt: XmlFormat, item: Item) -> Any:
    """The lxml element feedgen makes of ``item`` in a ``fmt`` document, not yet placed."""
    fe = FeedEntry()
    fe.register_extension("feedsvc", _EntryExtras, atom=True, rss=True)  # as add_entry does
    _fill_entry(fe, fmt, item)
    return fe.rss_entry() if fmt == "rss" else fe.atom_entry()


def _generator(fmt: Format, feed: FeedInfo, items: Sequence[Item], updated: datetime) -> Any:
    """A feedgen FeedGenerator holding the feed and its items, ready to serialize."""
    fg = FeedGenerator()
    fg.register_extension("feedsvc", _FeedExtras, _EntryExtras, atom=True, rss=True)
    fg.feedsvc.feed = feed
    fg.id(feed.self_url("atom"))
    fg.title(feed.title)
    fg.description(feed.description)
    fg.language(feed.language)
    fg.author(name=feed.author)
    fg.generator(_GENERATOR)
    fg.updated(updated)
    fg.lastBuildDate(updated)
    fg.link(href=feed.self_url(fmt), rel="self", type=MEDIA_TYPES[fmt])
    if feed.hub and fmt == "atom":
        fg.link(href=feed.hub, rel="hub")
    fg.link(href=feed.site_url, rel="alternate", type="text/html")  # last: RSS's <link>
    for item in items:
        _add_entry(fg, fmt, item)
    return fg


def _add_entry(fg: Any, fmt: Format, item: Item) -> None:
    _fill_entry(fg.add_entry(order="append"), fmt, item)


def _fill_entry(fe: Any, fmt: Format, item: Item) -> None:
    fe.feedsvc.item = item
    fe.guid(item.id, permalink=item.permalink)
    fe.title(item.title)
    if item.link:
        fe.link(href=item.link)  # Atom: rel defaults to alternate
    if item.categories:
        fe.category([{"term": term} for term in item.categories])
    if fmt == "atom":
        _atom_entry(fe, item)
    else:
        _rss_entry(fe, item)


def _atom_entry(fe: Any, item: Item) -> None:
    fe.published(item.published)
    fe.updated(item.updated)
    if item.author:
        fe.author(name=item.author)
    if item.summary:
        fe.summary(item.summary)
    # An Atom entry needs content or an alternate link (RFC 4287 4.1.1.1).
    content = item.content_html or ("" if item.link else html.escape(item.summary or item.title))
    content = _with_story(content, item)
    if content:
        fe.content(content, type="html")


def _rss_entry(fe: Any, item: Item) -> None:
    # <pubDate> is written by _EntryExtras: feedgen formats RFC 822 dates by
    # switching the process-wide locale, which costs time and races threads.
    # RSS <description> is HTML: plain text goes in escaped.
    if item.summary:
        fe.description(html.escape(item.summary, quote=False))
    content = _with_story(item.content_html, item)
    if content:
        fe.content(content)  # content:encoded, or description when no summary
    if item.author and _is_email(item.author):
        fe.author(email=item.author)
    enclosure = _rss_enclosure(item)
    if enclosure:
        fe.enclosure(enclosure.url, str(enclosure.length), enclosure.type or _OCTETS)


def _with_story(content: str, item: Item) -> str:
    """``content`` followed by the item's related stories and other outlets, where
    readers show them (a content without HTML of its own starts from the summary)."""
    if not item.story.related and not item.story.also_reported_by:
        return content
    lead = content or html.escape(item.summary, quote=False)
    return lead + item.story.content_html()


def _rss_enclosure(item: Item) -> Enclosure | None:
    """The one <enclosure> RSS allows: the first whose length is known (it is required)."""
    return next((e for e in item.enclosures if e.length), None)


def _is_email(author: str) -> bool:
    """RSS <author> must be an email address; names go in dc:creator."""
    local, at, domain = author.partition("@")
    return bool(local and at and "." in domain and " " not in author)


class _FeedExtras:
    """Channel-level additions feedgen does not make.

    Declares the ``media:`` and ``dc:`` prefixes on the root (else lxml would
    invent ``ns0:``), and in RSS adds the WebSub ``atom:link rel="hub"``:
    feedgen copies only the ``self`` link into an RSS channel.
    """

    feed: FeedInfo

    def extend_ns(self) -> dict[str, str]:
        return {"media": _MEDIA, "dc": _DC}

    def extend_atom(self, root: Any) -> Any:
        return root

    def extend_rss(self, root: Any) -> Any:
        if self.feed.hub:
            channel = root[0]
            xml_elem(f"{{{_ATOM}}}link", channel, href=self.feed.hub, rel="hub")
        return root


class _EntryExtras:
    """Entry-level elements feedgen 1.0 cannot write correctly.

    Atom enclosures and related stories (``rel="related"``): feedgen's
    ``atom_entry`` drops every attribute but ``href`` from entry links, which
    would turn them into more ``alternate`` links (invalid), so they are
    written here. Thumbnails go out as
    ``media:thumbnail``, enclosures RSS cannot carry (only one is allowed, and
    only with a known length) as ``media:content``, and an author who is a name
    rather than an email address as ``dc:creator``.
    """

    item: Item

    def extend_ns(self) -> dict[str, str]:
        return {}

    def extend_atom(self, entry: Any) -> Any:
        for enclosure in self.item.enclosures:
            # feedgen writes Atom elements unqualified under a literal xmlns attribute
            link = xml_elem("link", entry, rel="enclosure", href=enclosure.url)
            if enclosure.type:
                link.set("type", enclosure.type)
            if enclosure.length:
                link.set("length", str(enclosure.length))
        for related in self.item.story.related:
            if related.url:
                xml_elem("link", entry, rel="related", href=related.url, title=related.title)
        self._thumbnail(entry)
        return entry

    def extend_rss(self, entry: Any) -> Any:
        item = self.item
        xml_elem("pubDate", entry).text = format_datetime(item.published)
        if item.author and not _is_email(item.author):
            xml_elem(f"{{{_DC}}}creator", entry).text = item.author
        carried = _rss_enclosure(item)
        for enclosure in (e for e in item.enclosures if e is not carried):
            content = xml_elem(f"{{{_MEDIA}}}content", entry, url=enclosure.url)
            if enclosure.type:
                content.set("type", enclosure.type)
            if enclosure.length:
                content.set("fileSize", str(enclosure.length))
        self._thumbnail(entry)
        return entry

    def _thumbnail(self, entry: Any) -> None:
        if self.item.image:
            xml_elem(f"{{{_MEDIA}}}thumbnail", entry, url=self.item.image)
