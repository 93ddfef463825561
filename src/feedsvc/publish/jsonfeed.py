"""JSON Feed 1.1 (https://jsonfeed.org/version/1.1), which feedgen does not write.

Kept to the fields the spec defines, and ``_feedsvc`` (the spec's extension
convention: a key starting with an underscore) for an item's story; dates in
RFC 3339, ids as strings, and every item with ``content_html`` or, lacking
HTML, ``content_text`` (the spec requires one of the two).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from feedsvc.publish.items import FeedInfo, Item

VERSION = "https://jsonfeed.org/version/1.1"
# "<", ">" and the JavaScript line terminators appear in JSON only inside strings,
# where their \\u escapes mean the same: a document pasted into a <script> or
# eval'd by an old reader then cannot close the tag or break the line.
_SCRIPT_SAFE = (("<", "\\u003c"), (">", "\\u003e"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def render_json(feed: FeedInfo, items: Sequence[Item]) -> bytes:
    """The JSON Feed document of ``feed`` with ``items`` in the order given."""
    document: dict[str, Any] = {
        "version": VERSION,
        "title": feed.title,
        "home_page_url": feed.site_url,
        "feed_url": feed.self_url("json"),
        "description": feed.description,
        "language": feed.language,
        "authors": [{"name": feed.author}],
    }
    if feed.hub:
        document["hubs"] = [{"type": "WebSub", "url": feed.hub}]
    document["items"] = [_item(item) for item in items]
    return _dumps(document) + b"\n"


def head(feed: FeedInfo) -> tuple[bytes, bytes]:
    """The document of ``feed`` without items, as (before the items, after them).

    A whole document is the first part, the items of :func:`render_item` joined
    by commas, then the second: compact JSON nests without any whitespace, and
    the script-safe escapes replace single characters, never across a join.
    """
    empty = render_json(feed, ())
    after = b"]}\n"
    return empty[: -len(after)], after


def render_item(item: Item) -> bytes:
    """One item as it appears in a document's ``items`` array."""
    return _dumps(_item(item))


def _dumps(value: dict[str, Any]) -> bytes:
    # ensure_ascii=False keeps Vietnamese readable and the document small; the
    # text is already free of lone surrogates, so it always encodes as UTF-8.
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escape in _SCRIPT_SAFE:  # str.replace: far faster than str.translate
        text = text.replace(char, escape)
    return text.encode()


def _item(item: Item) -> dict[str, Any]:
    result: dict[str, Any] = {"id": item.id}
    if item.link:
        result["url"] = item.link
    result["title"] = item.title
    if item.content_html:
        result["content_html"] = item.content_html
    else:
        result["content_text"] = item.summary or item.title
    if item.summary:
        result["summary"] = item.summary
    if item.image:
        result["image"] = item.image
    result["date_published"] = _rfc3339(item.published)
    result["date_modified"] = _rfc3339(item.updated)
    if item.author:
        result["authors"] = [{"name": item.author}]
    if item.categories:
        result["tags"] = list(item.categories)
    if item.enclosures:
        result["attachments"] = [_attachment(e.url, e.type, e.length) for e in item.enclosures]
    if item.story:
        result["_feedsvc"] = _extension(item)
    return result


def _extension(item: Item) -> dict[str, Any]:
    """The item's story as JSON Feed's extension convention has it: each key only where
    it applies."""
    story = item.story
    extension: dict[str, Any] = {}
    if story.series is not None:
        series = story.series
        extension["series"] = {
            "id": series.id,
            "title": series.title,
            "part": series.part,
            "parts": list(series.parts),
        }
    if story.related:
        extension["related"] = [related.id for related in story.related]
    if story.also_reported_by:
        extension["also_reported_by"] = [
            {"source": other.source, "url": other.url} if other.url else {"source": other.source}
            for other in story.also_reported_by
        ]
    return extension


def _attachment(url: str, media_type: str, length: int | None) -> dict[str, Any]:
    attachment: dict[str, Any] = {"url": url, "mime_type": media_type or "application/octet-stream"}
    if length:
        attachment["size_in_bytes"] = length
    return attachment


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
