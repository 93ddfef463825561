"""An entry's fields as a reader sees them, read off feedparser's record.

Text fields are read the way their type says: HTML-typed ones are rendered to
text, plain ones kept as the publisher wrote them (``A<B`` is a title, not
markup: every output escapes it). Content is sanitized HTML with absolute
links. Every field is bounded, whatever the body holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

from feedsvc._text import clean_line, clean_text, strip_invisible
from feedsvc.ingest import _html
from feedsvc.model import Enclosure

# What one entry may cost, whatever the body holds: a 10 MB description cost nh3
# ~200 MB to sanitize and every feed and page a copy. Long reads are ~100 KB of HTML.
CONTENT_LIMIT = 256 * 1024  # characters of an entry's HTML, cut before sanitizing
TEXT_LIMIT = 64 * 1024  # characters of a title, summary, name or term, before reading it
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


def text(detail: Any, value: Any) -> str:
    """Return a title-like field as one line of the text a reader sees.

    An HTML-typed field is rendered to text (tags gone, entities decoded). A
    field feedparser reports as plain text is kept as the publisher wrote it:
    ``A<B`` and ``C++ <vector> tutorial`` are titles, not markup; every output
    escapes them. ``value`` (feedparser's ``title``) beats ``detail["value"]``:
    a nested element's ``<title>`` overwrites the entry's detail, never its
    value (feedparser's node_precedence/atom10_title.xml); the detail's type
    then says nothing about the value, so feedparser's own guess decides.
    """
    raw = str(value if value is not None else get(detail, "value") or "")
    if detail and get(detail, "value") == raw:
        is_html = get(detail, "type") in HTML_TYPES
    else:
        is_html = _html.looks_like_html(raw)
    raw = raw[:TEXT_LIMIT]
    return strip_invisible(_html.html_to_text(raw) if is_html else clean_line(raw))


def label(value: Any) -> str:
    """Return an author name or category term as text, decoded the way titles are.

    feedparser gives these no type; it calls a title HTML when it holds only
    harmless tags and entities, so ``Lo&#239;c`` is "Loïc" in an author as in a title.
    """
    return text(None, str(value or ""))


def content(entry: Any, base: str) -> tuple[str, str]:
    """Return the richest body of the entry, raw (NFC) and sanitized.

    Prefers HTML over plain text and then the longest: content:encoded or Atom
    content over the description/summary, which feeds often cut short.
    """
    details = list(get(entry, "content") or ()) or [get(entry, "summary_detail") or {}]
    best = max(details, key=lambda d: (get(d, "type") in HTML_TYPES, len(get(d, "value") or "")))
    value = str(get(best, "value") or "")
    if get(best, "type") not in HTML_TYPES:
        value = _html.plain_to_html(value[:CONTENT_LIMIT])
    value = _html.cut_between_tags(value, CONTENT_LIMIT)
    return clean_text(value), _html.sanitize_html(value, get(best, "base") or base)


def summary_text(entry: Any) -> str:
    detail = get(entry, "summary_detail")
    if not detail:
        return ""
    return text(detail, None)


def content_text(content: str) -> str:
    return strip_invisible(_html.html_to_text(content))


def author(entry: Any) -> str | None:
    detail = get(entry, "author_detail") or {}
    name = label(get(detail, "name") or get(entry, "author"))
    match = re.fullmatch(r"\S+@\S+\s*\((.+)\)", name)  # RSS <author>: "email (Name)"
    return (match.group(1).strip() if match else name) or None


def categories(entry: Any) -> tuple[str, ...]:
    """Return the entry's own category terms, cleaned, without repeats, in feed order."""
    seen: dict[str, str] = {}
    for tag in get(entry, "tags") or ():
        term = label(get(tag, "term") or get(tag, "label"))
        if term:
            seen.setdefault(term.casefold(), term)
    return tuple(seen.values())


def enclosures(entry: Any, base: str) -> tuple[Enclosure, ...]:
    found: dict[str, Enclosure] = {}
    for link in get(entry, "links") or ():
        url = absolute(get(link, "href"), base) if get(link, "rel") == "enclosure" else None
        if url:
            length = str(get(link, "length") or "").strip()
            found.setdefault(
                url,
                Enclosure(
                    url=url,
                    type=clean_line(str(get(link, "type") or "")),
                    length=int(length) if length.isdigit() and len(length) < 19 else None,
                ),
            )
    return tuple(found.values())


def image(entry: Any, base: str, content: str) -> str | None:
    """Return the entry's picture as an absolute http(s) URL, or None."""
    return next(filter(None, (absolute(c, base) for c in _image_candidates(entry, content))), None)


def _image_candidates(entry: Any, content: str) -> Iterator[str | None]:
    """Yield picture URLs, best first: media thumbnail, media image, enclosure, first <img>."""
    yield from (get(t, "url") for t in get(entry, "media_thumbnail") or ())
    for media in get(entry, "media_content") or ():
        if get(media, "medium") == "image" or str(get(media, "type", "")).startswith("image/"):
            yield get(media, "url")
    for link in get(entry, "links") or ():
        if get(link, "rel") == "enclosure" and str(get(link, "type", "")).startswith("image/"):
            yield get(link, "href")
    yield _html.first_image(content)  # already absolute: nh3 resolved it
    yield _html.first_image(str(get(get(entry, "summary_detail"), "value") or ""))


def absolute(href: Any, base: str | None) -> str | None:
    """Return ``href`` resolved against ``base`` if the result is an http(s) URL."""
    href = clean_line(str(href or ""))
    if not href:
        return None
    try:
        url = urljoin(base, href) if base else href
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme in ("http", "https") and parts.hostname else None


def get(record: Any, key: str, default: Any = None) -> Any:
    """Read a feedparser field as stored.

    ``FeedParserDict.get`` aliases keys: a missing ``updated`` returns ``published``
    (with a DeprecationWarning), ``url`` returns ``href``, and so on.
    """
    return dict.get(record, key, default) if isinstance(record, dict) else default
