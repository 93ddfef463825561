"""Feed documents assembled from entry fragments, byte for byte as ``render_all`` writes them.

Rendering an entry (feedgen's element, serialized; ``json.dumps`` of its item) is
nearly all of a feed's cost, and a poll changes one or two entries of a
category's fifty. So each entry is rendered once per format into a
:class:`Fragment`, which the publisher caches in the database
(``store.fragments``); a document is its head (feedgen with no entries, or the
JSON Feed without items) with the cached fragments in between.

A fragment depends on the entry row, on :class:`~feedsvc.publish.items.EntryContext`
(``to_item`` reads nothing else of the feed) and on the code that renders it.
Its key is therefore the entry id with its revision (an edit raises it; a
deleted entry's fragments go with it, by foreign key; :func:`revision` adds
the revision of its story, which a new report of the same story or a new part
of its series raises) and :func:`context_key`,
a hash of the context and of this renderer: the source of the publish modules
and the versions of feedgen, lxml and libxml2, so an upgrade never serves
elements an older renderer wrote.

Why the bytes are the same: lxml serializes an element that sits in a tree
with its ancestors' namespace declarations copied onto its start tag, right
after the tag name. A fragment is that serialization with exactly those
declarations cut, which is the element as it appears inside the whole
document (tests/unit/test_fragments.py renders random entry sets both ways).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import feedgen.version
from lxml import etree

from feedsvc import _text, i18n
from feedsvc.model import Entry, Fragment
from feedsvc.publish import feeds, items, jsonfeed
from feedsvc.publish.items import EntryContext, FeedInfo, Format, Item, XmlFormat, to_item, utc
from feedsvc.stories.model import StoryContext

# The closing tags that follow a document's last entry.
_END: dict[XmlFormat, bytes] = {"rss": b"</channel></rss>", "atom": b"</feed>"}
_TAG: dict[XmlFormat, bytes] = {"rss": b"<item", "atom": b"<entry"}


def context_key(context: EntryContext) -> str:
    """The part of a fragment's key that is not the entry: its context and the renderer."""
    state = [context.tag_authority, context.language, _renderer()]
    return hashlib.sha256(json.dumps(state).encode()).hexdigest()[:32]


Stories = Mapping[int, StoryContext]
_NO_STORIES: Stories = {}


def revision(entry: Entry, stories: Stories) -> int:
    """A fragment's revision: the entry's, plus its story's (one more once detected).

    Both only ever go up, so their sum moves on with every change of either.
    """
    story = stories.get(entry.id)
    return entry.revision + (story.revision + 1 if story is not None else 0)


def render_cached(
    formats: Iterable[Format],
    feed: FeedInfo,
    entries: Sequence[Entry],
    now: datetime,
    cached: Mapping[int, Fragment],
    stories: Stories = _NO_STORIES,
) -> tuple[dict[Format, bytes], list[Fragment]]:
    """The documents ``render_all`` would write, from ``cached`` fragments where they are
    current (same revision, every format there), and the fragments that had to be
    built (to be cached).

    Args:
        cached: fragments by entry id, already of this feed's :func:`context_key`.
        stories: the entries' story contexts (``store.stories``), by entry id.
    """
    formats = tuple(formats)
    wanted = set(formats)
    missing = [entry for entry in entries if _stale(cached.get(entry.id), entry, wanted, stories)]
    built = build(formats, feed, missing, stories)
    fragments = {**cached, **{fragment.entry_id: fragment for fragment in built}}
    shown = [fragments[entry.id] for entry in entries]
    return {fmt: assemble(fmt, feed, shown, now) for fmt in formats}, built


def _stale(fragment: Fragment | None, entry: Entry, formats: set[Format], stories: Stories) -> bool:
    return (
        fragment is None
        or fragment.revision != revision(entry, stories)
        or not fragment.bodies.keys() >= formats
    )


def build(
    formats: Iterable[Format],
    feed: FeedInfo,
    entries: Sequence[Entry],
    stories: Stories = _NO_STORIES,
) -> list[Fragment]:
    """Each entry's fragment in ``formats`` (each entry cleaned once for all of them)."""
    if not entries:
        return []
    context = feed.entry_context
    shown = [(entry, to_item(entry, context, stories.get(entry.id))) for entry in entries]
    bodies = {
        fmt: _json_bodies(shown) if fmt == "json" else _xml_bodies(fmt, feed, shown)
        for fmt in formats
    }
    return [
        Fragment(
            entry.id,
            revision(entry, stories),
            item.id,
            item.published,
            item.updated,
            {fmt: bodies[fmt][n] for fmt in bodies},
        )
        for n, (entry, item) in enumerate(shown)
    ]


def _json_bodies(shown: Sequence[tuple[Entry, Item]]) -> list[bytes]:
    return [jsonfeed.render_item(item) for _, item in shown]


def _xml_bodies(fmt: XmlFormat, feed: FeedInfo, shown: Sequence[tuple[Entry, Item]]) -> list[bytes]:
    """Each item's element as feedgen places it in a ``fmt`` document of ``feed``."""
    root = etree.fromstring(feeds.head(fmt, feed, shown[0][1].updated))
    parent = root[0] if fmt == "rss" else root  # the channel, or the Atom feed
    declarations = _declarations(parent)
    tag = _TAG[fmt]
    bodies = []
    for _, item in shown:
        element = feeds.entry_element(fmt, item)
        parent.append(element)
        data: bytes = etree.tostring(element, encoding="UTF-8")
        if not data.startswith(tag + declarations):
            raise RuntimeError(f"unexpected serialization of an entry: {data[:200]!r}")
        bodies.append(tag + data[len(tag) + len(declarations) :])
    return bodies


def _declarations(parent: Any) -> bytes:
    """The namespace declarations lxml copies onto an element serialized inside ``parent``."""
    probe = etree.SubElement(parent, "x")
    data: bytes = etree.tostring(probe, encoding="UTF-8")
    parent.remove(probe)
    return data[len(b"<x") : -len(b"/>")]


def assemble(fmt: Format, feed: FeedInfo, fragments: Sequence[Fragment], now: datetime) -> bytes:
    """The ``fmt`` document of ``feed`` holding ``fragments`` (one per entry), newest first."""
    ordered = sorted(fragments, key=lambda f: (-f.published.timestamp(), f.item_id))
    bodies = [fragment.bodies[fmt] for fragment in ordered]
    if fmt == "json":
        before, after = jsonfeed.head(feed)
        return before + b",".join(bodies) + after
    updated = max((fragment.updated for fragment in ordered), default=utc(now))
    document = feeds.head(fmt, feed, updated)
    end = _END[fmt]
    if not document.endswith(end):
        raise RuntimeError(f"unexpected end of a {fmt} document: {document[-100:]!r}")
    return document[: -len(end)] + b"".join(bodies) + end


@cache
def _renderer() -> str:
    """A hash of everything that decides a fragment's bytes besides its entry and context."""
    digest = hashlib.sha256()
    for module in (feeds, items, jsonfeed, _text, i18n):
        digest.update(Path(module.__file__ or "").read_bytes())
    digest.update(Path(__file__).read_bytes())
    versions = (feedgen.version.version_str, etree.LXML_VERSION, etree.LIBXML_VERSION)
    digest.update(repr(versions).encode())
    return digest.hexdigest()
