"""Parse: a fetched body becomes a ``ParsedFeed`` of clean, safe, identified entries.

``parse_feed`` is pure (no I/O, no clock, picklable arguments) so the poller can
run it in a process pool. The body is first decoded as feedparser decodes it,
refused if it declares XML entities, and cut to its first ``max_entries``
entries (``ingest._xml``). feedparser does the XML; everything it hands back is
then read as a reader sees it (``ingest._fields``: NFC, one-line text, plain
text kept as written), sanitized (nh3), made absolute, dated in the source's
time zone and identified.

feedparser is called with its sanitizer and relative-URI resolver switched off:
both re-serialize every HTML fragment through its pure-Python SGML parser, and
nh3 does the same jobs (allowlist and ``rewrite_with_base``) far faster.
"""

from __future__ import annotations

import html
import io
import re
import xml.sax
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import feedparser

from feedsvc._text import clean_line, shorten
from feedsvc.errors import ParseError
from feedsvc.ingest import _dates, _fields, _items, _xml
from feedsvc.ingest._fields import get as _get
from feedsvc.ingest.identity import content_hash, entry_identity
from feedsvc.model import ItemKey, ParsedEntry, ParsedFeed

SUMMARY_LIMIT = 500
# feedparser's names for the RSS versions whose <guid> is a permalink by default
_RSS2_VERSIONS = frozenset({"rss091n", "rss091u", "rss092", "rss093", "rss094", "rss20", "rss"})
_HTML_PAGE = re.compile(rb"<(?:!doctype\s+html|html)[\s>]", re.IGNORECASE)
# feedparser does not expose isPermaLink="false"; it only keeps such a guid out of `link`.
# The tag is found first and its attributes checked second, so every scan is bounded.
_GUID = re.compile(rb"<guid\b([^>]{0,300})>\s*(?:<!\[CDATA\[([^\]]*)\]\]>|([^<]*))", re.IGNORECASE)
_NOT_PERMALINK = re.compile(rb"""ispermalink\s*=\s*["']\s*false""", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Source:
    """What every entry of one body is read against."""

    url: str
    tz: tzinfo
    now: datetime
    rss2_guids: bool  # RSS 0.9x/2.0, where a guid is a permalink unless it says otherwise
    non_permalinks: frozenset[str]


def parse_feed(
    body: bytes,
    *,
    url: str,
    headers: Mapping[str, str],
    timezone: str,
    now: datetime,
    max_entries: int | None = None,
    known: Mapping[str, str] | None = None,
) -> ParsedFeed:
    """Parse a fetched feed body into clean, sanitized, identified entries.

    Args:
        body: the response body, undecoded; its encoding is found from
            ``headers`` and the XML declaration.
        url: the URL the body came from: the base for relative links.
        headers: the response headers (Content-Type, Content-Language are used).
        timezone: the source's IANA zone, for dates that name none.
        now: the poll time (aware); dates more than a day after it are flagged.
        max_entries: keep only the first this many entries in document order
            (feeds list the newest first); None keeps all.
        known: the item keys stored for the source (key -> entry identity),
            to parse only the items not among them; None parses every item and
            keys none.

    Returns:
        The feed; ``warning`` is set when the XML was malformed but readable
        or entries were left out (``left_out`` says how many). With ``known``,
        ``entries`` are those of the new and edited items and ``items`` keys
        every item (None when the document could not be split).

    Raises:
        ParseError: an empty body, a body with XML entity declarations, or one
            that is not a feed; the message is one line for the operator.
    """
    if not body or body.isspace():
        raise ParseError("empty body: the server sent no feed")
    decoded = _xml.decode(body, headers)
    _xml.refuse_entity_declarations(decoded.data)
    splitting = known is not None and decoded.problem is None  # odd encodings: read whole
    cut, split = _cut_and_split(decoded.data, max_entries, splitting, _item_context(url, headers))
    read = _read(cut.data, split, known or {}, url, headers)
    result = read.result
    _require_feed(result, cut.data, headers, stored=read.stored)
    source = _Source(
        url=url,
        tz=ZoneInfo(timezone),
        now=now if now.tzinfo else now.replace(tzinfo=UTC),
        rss2_guids=str(_get(result, "version", "")) in _RSS2_VERSIONS,
        non_permalinks=_non_permalink_guids(cut.data),
    )
    parsed = [_parse_entry(entry, source) for entry in result.entries]
    entries, items = (
        _merge(read, parsed, known or {}) if read.split is not None else (_unique(parsed), None)
    )
    problems = (_warning(result, decoded.problem), _left_out(cut.left_out, max_entries))
    return ParsedFeed(
        title=_fields.text(_get(result.feed, "title_detail"), _get(result.feed, "title")) or None,
        link=_fields.absolute(_alternate_link(result.feed), url),
        entries=entries,
        language=clean_line(_get(result.feed, "language") or "") or None,
        warning="; ".join(filter(None, problems)) or None,
        left_out=cut.left_out,
        items=items,
    )


def _cut_and_split(
    data: bytes, max_entries: int | None, splitting: bool, context: str
) -> tuple[_xml.Cut, _items.Split | None]:
    """The document cut to its first ``max_entries`` entries and, if ``splitting``, its items.

    A split document's items are its entries, so one with no more than
    ``max_entries`` needs no counting pass to know it is not cut.
    """
    split = _items.split(data, context) if splitting else None
    if not max_entries or (split is not None and len(split.items) <= max_entries):
        return _xml.Cut(data, 0), split
    cut = _xml.first_entries(data, max_entries)
    if split is not None:
        split = _items.split(cut.data, context)
    return cut, split


@dataclass(frozen=True, slots=True)
class _Read:
    """What feedparser made of the document, or of its new and edited items (``changed``)."""

    result: Any
    split: _items.Split | None  # None: the whole document was read
    changed: tuple[int, ...] = ()

    @property
    def stored(self) -> int:
        """How many items were not read: their entries are stored."""
        return len(self.split.items) - len(self.changed) if self.split is not None else 0


def _read(
    data: bytes,
    split: _items.Split | None,
    known: Mapping[str, str],
    url: str,
    headers: Mapping[str, str],
) -> _Read:
    """Run feedparser on the document without its known items, if it reads as the whole does.

    What is left is the document's own head, root and channel around the new
    and edited items, so feedparser reads them as it reads them in the whole.
    A result with a problem, or with another number of entries than items,
    means the split was not what feedparser sees: the whole is read instead.
    """
    if split is not None:
        changed = tuple(n for n, item in enumerate(split.items) if item.key not in known)
        result = _run_feedparser(split.keeping(set(changed)), url, headers)
        if len(result.entries) == len(changed) and _warning(result, None) is None:
            return _Read(result, split, changed)
        if len(changed) == len(split.items):  # that was the whole document
            return _Read(result, None)
    return _Read(_run_feedparser(data, url, headers), None)


def _merge(
    read: _Read, parsed: list[ParsedEntry], known: Mapping[str, str]
) -> tuple[tuple[ParsedEntry, ...], tuple[ItemKey, ...]]:
    """The new and edited items' entries and every item's key, the first of each identity
    in document order (as ``_unique`` keeps them): a later copy is neither stored nor
    keyed, so it is read again next time, and stays a copy."""
    assert read.split is not None
    parsed_at = dict(zip(read.changed, parsed, strict=True))
    seen: set[str] = set()
    entries: list[ParsedEntry] = []
    items: list[ItemKey] = []
    for index, item in enumerate(read.split.items):
        entry = parsed_at.get(index)
        identity = entry.identity if entry is not None else known[item.key]
        if identity in seen:
            continue
        seen.add(identity)
        items.append(ItemKey(item.key, identity))
        if entry is not None:
            entries.append(entry)
    return tuple(entries), tuple(items)


def _item_context(url: str, headers: Mapping[str, str]) -> str:
    """What every item is read against besides its own start tags (see ``_items``)."""
    lowered = {key.lower(): value for key, value in headers.items()}
    media_type = lowered.get("content-type", "").partition(";")[0].strip()
    return f"{url}\n{media_type}\n{lowered.get('content-language', '')}"


def _run_feedparser(data: bytes, url: str, headers: Mapping[str, str]) -> Any:
    """Run feedparser on the decoded bytes, never on a string it could take for a path or URL.

    ``data`` is already UTF-8 (``_xml.decode``); the Content-Type keeps its media
    type and says so, or feedparser would decode it again by the server's charset.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    media_type = lowered.get("content-type", "").partition(";")[0].strip() or "application/xml"
    response_headers = {
        "content-location": url,  # the base for relative URIs
        "content-type": f"{media_type}; charset=utf-8",
    }
    if "content-language" in lowered:
        response_headers["content-language"] = lowered["content-language"]
    return feedparser.parse(
        io.BytesIO(data),
        response_headers=response_headers,
        resolve_relative_uris=False,
        sanitize_html=False,
    )


def _require_feed(result: Any, data: bytes, headers: Mapping[str, str], *, stored: int) -> None:
    """Refuse a document with neither a feed version nor entries (``stored``: items not
    read again, whose entries are stored)."""
    if _get(result, "version") or result.entries or stored:
        return
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if "html" in content_type.lower() or _HTML_PAGE.search(data[:4096]):
        raise ParseError(f"not a feed: got an HTML page ({content_type or 'no Content-Type'})")
    problem = _describe(_get(result, "bozo_exception"))
    raise ParseError(
        "not a feed: no RSS or Atom document found" + (f" ({problem})" if problem else "")
    )


def _warning(result: Any, decoding_problem: Exception | None) -> str | None:
    """Describe a recoverable problem, ignoring feedparser's notes about HTTP headers.

    feedparser sets ``bozo`` for a missing or non-XML Content-Type and for every
    ``text/xml`` without charset (RFC 3023 says us-ascii); those are the server's
    habits, not a broken feed, and would mark most healthy sources. A problem
    of the XML wins over one of the decoding, as in feedparser.
    """
    for exc in (_get(result, "bozo_exception"), decoding_problem):
        if exc is not None and not _is_header_note(exc):
            return _describe(exc)
    return None


def _is_header_note(exc: object) -> bool:
    if isinstance(exc, feedparser.NonXMLContentType):
        return True
    return isinstance(exc, feedparser.CharacterEncodingOverride) and "as us-ascii" in str(exc)


def _left_out(count: int, limit: int | None) -> str | None:
    if not count:
        return None
    return f"{count} entries left out: fetch.max_entries is {limit} (the first {limit} were kept)"


def _describe(exc: object) -> str | None:
    if exc is None:
        return None
    if isinstance(exc, xml.sax.SAXParseException):
        where = f"line {exc.getLineNumber()}, column {exc.getColumnNumber()}"
        return f"malformed XML, read leniently: {exc.getMessage()} at {where}"
    return shorten(clean_line(f"{type(exc).__name__}: {exc}"), 300)


def _non_permalink_guids(body: bytes) -> frozenset[str]:
    if b"ermalink" not in body and b"ermaLink" not in body:  # cheap: nearly always absent
        return frozenset()
    return frozenset(
        clean_line(html.unescape((match[2] or match[3]).decode("utf-8", "replace")))
        for match in _GUID.finditer(body)
        if _NOT_PERMALINK.search(match[1])
    )


def _parse_entry(entry: Any, source: _Source) -> ParsedEntry:
    base = _entry_base(entry, source.url)
    title = _fields.text(_get(entry, "title_detail"), _get(entry, "title"))
    link = _fields.absolute(_get(entry, "link"), base)
    guid = clean_line(_get(entry, "id") or "") or None
    raw_content, content = _fields.content(entry, base)
    own_summary = _fields.summary_text(entry)
    summary = shorten(own_summary or _fields.content_text(content), SUMMARY_LIMIT)
    author = _fields.author(entry)
    categories = _fields.categories(entry)
    enclosures = _fields.enclosures(entry, base)
    published, date_flag = _dates.choose_published(
        [
            (_get(entry, "published"), _get(entry, "published_parsed")),
            (_get(entry, "updated"), _get(entry, "updated_parsed")),
        ],
        source.tz,
        source.now,
    )
    return ParsedEntry(
        identity=entry_identity(
            guid,
            link,
            title,
            raw_content,
            summary=summary if own_summary and _get(entry, "content") else "",  # not a copy
            author=author,
            categories=categories,
            enclosures=enclosures,
        ),
        title=title,
        link=link,
        guid=guid,
        guid_is_permalink=_is_permalink(guid, source),
        summary=summary,
        content=content,
        author=author,
        categories=categories,
        published=published,
        updated=_updated(entry, source),
        date_flag=date_flag,
        enclosures=enclosures,
        image=_fields.image(entry, base, content),
        content_hash=content_hash(
            title=title,
            link=link,
            summary=summary,
            content=content,
            author=author,
            categories=categories,
            enclosures=enclosures,
        ),
    )


def _entry_base(entry: Any, feed_url: str) -> str:
    """Return the entry's base URI: feedparser records xml:base on each text detail."""
    for detail in (
        *(_get(entry, "content") or ()),
        _get(entry, "summary_detail"),
        _get(entry, "title_detail"),
    ):
        if detail and _get(detail, "base"):
            return str(detail["base"])
    return feed_url


def _is_permalink(guid: str | None, source: _Source) -> bool:
    """Tell whether the guid is the article's URL (RSS 2.0: unless isPermaLink="false").

    feedparser's ``guidislink`` means something else: that it *copied* the guid
    into ``link`` because the item had no ``<link>`` before it.
    """
    if not guid or not source.rss2_guids or _fields.absolute(guid, None) != guid:
        return False
    return guid not in source.non_permalinks


def _updated(entry: Any, source: _Source) -> datetime | None:
    updated = _dates.parse_date(_get(entry, "updated"), source.tz, _get(entry, "updated_parsed"))
    if updated is None or updated > source.now + _dates.FUTURE_TOLERANCE:
        return None
    return updated


def _alternate_link(feed: Any) -> str | None:
    """Return the feed's web page; feedparser falls back to the Atom id, which is not one."""
    for link in _get(feed, "links") or ():
        if _get(link, "rel") == "alternate" and _get(link, "href"):
            return str(link["href"])
    return None


def _unique(entries: Iterable[ParsedEntry]) -> tuple[ParsedEntry, ...]:
    """Keep the first of entries that share an identity: the store keys on it."""
    seen: dict[str, ParsedEntry] = {}
    for entry in entries:
        seen.setdefault(entry.identity, entry)
    return tuple(seen.values())
