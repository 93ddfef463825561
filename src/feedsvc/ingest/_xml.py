"""The document before feedparser reads it: decoded, checked for entity declarations, cut.

The body is decoded here exactly as feedparser decodes it (its own
``convert_to_utf8``: HTTP charset, BOM, XML declaration, fallbacks), and every
later step works on that UTF-8 text. So the entity-declaration check sees what
feedparser's parsers would see, in whatever encoding the body came: EBCDIC
(cp500, cp875…) and UTF-7 spell ``<!ENTITY`` with other bytes, and a search of
the raw bytes missed them.

A document with more entries than the caller keeps is cut down to its first
``limit`` by a streaming pass (expat, which builds nothing) before feedparser
builds all of them: one 10 MB feed of 40,000 small items cost feedparser
~400 MB. The cut falls just before the first entry not kept, and the elements
still open there are closed, so the rest is a well-formed document.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from xml.parsers import expat

from feedparser.encodings import convert_to_utf8

from feedsvc.errors import ParseError

_DECLARATION = re.compile(rb"<!entity", re.IGNORECASE)
# feedparser's RE_XML_DECLARATION (on the decoded text) and what it puts in its place
_XML_DECLARATION = re.compile(rb"^<\?xml[^>]*?>")
_UTF8_DECLARATION = b"<?xml version='1.0' encoding='utf-8'?>"
# An entry's start tag, prefixed or not: only a bound on how many there are (it also
# finds them inside CDATA and comments), used to skip the pass and for broken XML.
_ENTRY_TAG = re.compile(rb"<(?:[\w.-]+:)?(?:item|entry)[\s/>]", re.IGNORECASE)
_ENTRY_NAMES = frozenset({"item", "entry"})
_CHUNK = 1 << 20
REFUSED = "refused: XML entity declarations (possible entity-expansion bomb)"


@dataclass(frozen=True, slots=True)
class Decoded:
    """A body as feedparser reads it."""

    data: bytes  # UTF-8, its XML declaration rewritten to say so
    problem: Exception | None  # what feedparser would note about the encoding


@dataclass(frozen=True, slots=True)
class Cut:
    """A document down to its first entries."""

    data: bytes
    left_out: int  # entries after the cut


def decode(body: bytes, headers: Mapping[str, str]) -> Decoded:
    """Decode ``body`` to UTF-8 the way feedparser does, given the response ``headers``."""
    lowered = {key.lower(): value for key, value in headers.items()}
    utf8 = _utf8_as_declared(body, lowered)
    if utf8 is not None:
        return utf8
    result: dict[str, Any] = {}
    data = convert_to_utf8(lowered, body, result)
    return Decoded(data=data, problem=result.get("bozo_exception"))


def _utf8_as_declared(body: bytes, headers: dict[str, str]) -> Decoded | None:
    """What ``convert_to_utf8`` makes of a UTF-8 body it reads as UTF-8, without its copies.

    It decodes the whole body, rewrites the XML declaration and encodes it all
    again: a millisecond for a 400 KB feed, for the bytes it started with. The
    encoding it tries first depends only on the headers and the first line
    (BOM, declaration: its patterns stop at a newline), so it is asked about the
    first line alone; when that is UTF-8 and the whole body is valid UTF-8, the
    result is the body with feedparser's declaration in place of its own.
    """
    line_end = body.find(b"\n") + 1
    declaration = _XML_DECLARATION.match(body)
    if not line_end or declaration is None:
        return None
    result: dict[str, Any] = {}
    convert_to_utf8(headers, body[:line_end], result)
    if _codec(result.get("encoding")) != "utf-8":
        return None
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    data = _UTF8_DECLARATION + body[declaration.end() :]
    return Decoded(data=data, problem=result.get("bozo_exception"))


def _codec(encoding: object) -> str | None:
    try:
        return codecs.lookup(str(encoding)).name if encoding else None
    except LookupError:
        return None


def refuse_entity_declarations(data: bytes) -> None:
    """Refuse any ``<!ENTITY`` in the decoded document.

    Any declaration is refused, not just recursive ones: feeds have no use for
    them, and telling a bomb from a harmless declaration means expanding it.
    """
    if _DECLARATION.search(data):
        raise ParseError(REFUSED)


def first_entries(data: bytes, limit: int) -> Cut:
    """Return ``data`` cut just before its ``limit + 1``-th entry, and how many were cut.

    An entry is an ``item`` or ``entry`` element (any prefix) outside another
    one. When the XML is too broken for expat to reach the cut, the cut falls
    at the ``limit + 1``-th entry tag found by a plain search instead, and
    feedparser's lenient parser reads what is left, as it would have read it all.
    """
    if _count_tags(data, limit + 1) <= limit:
        return Cut(data, 0)
    walk = _Walk(limit)
    try:
        walk.run(data)
    except expat.ExpatError:
        if walk.cut is None:
            return _cut_at_tag(data, limit)
        # the kept part was read; the entries after the error are counted as tags
        walk.left_out = max(walk.left_out, _count_tags(data, None, start=walk.cut))
    if walk.cut is None:  # fewer real entries than tags (some were in CDATA)
        return Cut(data, 0)
    closing = "".join(f"</{name}>" for name in reversed(walk.open_at_cut))
    return Cut(data[: walk.cut] + closing.encode(), walk.left_out)


class _Walk:
    """One expat pass: where entry ``limit + 1`` starts, what is open there, how many follow."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.cut: int | None = None
        self.open_at_cut: tuple[str, ...] = ()
        self.left_out = 0
        self._open: list[str] = []
        self._entries = 0  # top-level entries so far
        self._inside = 0  # entries open now
        self._parser = expat.ParserCreate()
        # Undefined entities (&nbsp; without a DTD) are skipped, not errors; nothing
        # external is ever read (no ExternalEntityRefHandler).
        self._parser.UseForeignDTD(True)
        self._parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self._parser.StartElementHandler = self._start
        self._parser.EndElementHandler = self._end
        self._parser.EntityDeclHandler = self._refuse

    def run(self, data: bytes) -> None:
        for start in range(0, len(data), _CHUNK):
            self._parser.Parse(data[start : start + _CHUNK], False)
        self._parser.Parse(b"", True)

    def _start(self, name: str, attributes: object) -> None:
        if name.rpartition(":")[2].lower() in _ENTRY_NAMES:
            if not self._inside:
                self._count_entry()
            self._inside += 1
        self._open.append(name)

    def _count_entry(self) -> None:
        self._entries += 1
        if self._entries <= self.limit:
            return
        if self.cut is None:
            self.cut = self._parser.CurrentByteIndex
            self.open_at_cut = tuple(self._open)
        self.left_out += 1

    def _end(self, name: str) -> None:
        self._open.pop()
        if self._inside and name.rpartition(":")[2].lower() in _ENTRY_NAMES:
            self._inside -= 1

    @staticmethod
    def _refuse(*args: object) -> None:
        raise ParseError(REFUSED)  # refused before already: the parser refuses them too


def _count_tags(data: bytes, stop: int | None, *, start: int = 0) -> int:
    """How many entry tags ``data`` holds from ``start``, counting no further than ``stop``."""
    count = 0
    for _ in _ENTRY_TAG.finditer(data, start):
        count += 1
        if count == stop:
            break
    return count


def _cut_at_tag(data: bytes, limit: int) -> Cut:
    tags = _ENTRY_TAG.finditer(data)
    for _ in range(limit):
        next(tags)
    cut = next(tags).start()
    return Cut(data[:cut], _count_tags(data, None, start=cut))
