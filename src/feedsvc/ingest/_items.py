"""A decoded document split into its items, each keyed by a hash of what it parses from.

A news feed re-fetched every few minutes is mostly the items already stored:
hashing each item's bytes tells the ones seen before from the new and edited
ones, and only those need feedparser (``ingest.parse``). An expat pass with no
handlers says the document is well-formed (it builds nothing, reads nothing
external and refuses what the entity guard refuses, ``ingest._xml``); a scan
then finds where each item starts and ends, jumping over CDATA sections,
comments and processing instructions.

An item's key hashes its own bytes and everything else its entry is read
against: the feed's URL (relative links), the Content-Type and Content-Language
it came with, the start tags it sits in (namespaces, ``xml:base``, ``xml:lang``,
the RSS version) and the version of this code and of feedparser. The rest of
the document (``lastBuildDate``, the channel's title) changes no entry.

``split`` returns None for anything it cannot split exactly: malformed XML
(feedparser would read the whole document leniently, differently), a DOCTYPE
(it can declare entities and changes how feedparser names the version), an
item inside another, an empty ``<item/>``. The caller then parses it all.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from importlib.metadata import version
from xml.parsers import expat

import feedparser

from feedsvc.errors import ParseError
from feedsvc.ingest._xml import REFUSED

# Raise it when a change to parse.py or _fields.py reads a stored item differently; the
# libraries that read an entry are named too (a new nh3 may sanitize it differently).
KEY_VERSION = f"1 feedparser {feedparser.__version__} nh3 {version('nh3')}"
_ITEM_NAMES = frozenset({b"item", b"entry"})


@dataclass(frozen=True, slots=True)
class Item:
    start: int  # byte offsets of the element in the document, end tag included
    end: int
    key: str


@dataclass(frozen=True, slots=True)
class Split:
    data: bytes
    items: tuple[Item, ...]

    def keeping(self, indexes: Collection[int]) -> bytes:
        """The document with only the items at ``indexes``: the rest of it as it was."""
        if len(indexes) == len(self.items):
            return self.data
        parts, at = [], 0
        for index, item in enumerate(self.items):
            if index not in indexes:
                parts.append(self.data[at : item.start])
                at = item.end
        parts.append(self.data[at:])
        return b"".join(parts)


class _Unsplittable(Exception):
    pass


# Outside items every tag counts (the ones open at an item are its context); inside one
# only item tags do. CDATA sections, comments and processing instructions are jumped over.
_OUTSIDE = re.compile(rb"<!\[CDATA\[|<!--|<\?|<!|</?[^\s/>!?]+")
_INSIDE = re.compile(rb"<!\[CDATA\[|<!--|<\?|</?(?:[^\s/>!?:]+:)?(?:(?i:item|entry))(?=[\s/>])")
_ITEM_START = re.compile(rb"<(?:[^\s/>!?:]+:)?(?:(?i:item|entry))[\s/>]")
_ATTRIBUTES = re.compile(rb"""(?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*\s*(/?)>""")
_JUMPS = {b"<![CDATA[": b"]]>", b"<!--": b"-->", b"<?": b"?>"}


def split(data: bytes, context: str) -> Split | None:
    """Split the UTF-8 document ``data`` into its items, or None if it cannot be split exactly.

    ``context`` names what the caller reads every entry against (URL, headers).
    """
    if not _well_formed(data):
        return None
    try:
        return Split(data, tuple(_scan(data, f"{KEY_VERSION}\n{context}\n".encode())))
    except _Unsplittable:
        return None


def _well_formed(data: bytes) -> bool:
    """Whether expat reads ``data`` as well-formed XML with no DOCTYPE (it builds nothing)."""
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _unsplittable
    parser.EntityDeclHandler = _refuse
    try:
        parser.Parse(data, True)
    except (expat.ExpatError, _Unsplittable):
        return False
    return True


def _scan(data: bytes, context: bytes) -> Iterator[Item]:
    """Each item of the well-formed ``data``, keyed by ``context``, the start tags it is in
    and its bytes. Well-formed, every ``<`` outside CDATA, comments and processing
    instructions starts a tag, and no attribute value holds one."""
    open_tags: list[bytes] = []
    at = 0
    while match := _OUTSIDE.search(data, at):
        token = match[0]
        if token in _JUMPS:
            at = _jump(data, match.end(), _JUMPS[token])
        elif token == b"<!":
            raise _Unsplittable  # a DOCTYPE: refused above already
        elif token.startswith(b"</"):
            open_tags.pop()
            at = data.index(b">", match.end()) + 1
        else:
            tag = _ATTRIBUTES.match(data, match.end())
            if tag is None:
                raise _Unsplittable
            at = tag.end()
            if token[1:].rpartition(b":")[2].lower() in _ITEM_NAMES:
                if tag[1]:
                    raise _Unsplittable  # <item/>
                at = _item_end(data, at, token[1:])
                digest = hashlib.sha256(context)
                for start_tag in open_tags:
                    digest.update(start_tag)
                digest.update(memoryview(data)[match.start() : at])
                yield Item(match.start(), at, digest.hexdigest()[:32])
            elif not tag[1]:
                open_tags.append(data[match.start() : at] + b"\n")


def _item_end(data: bytes, at: int, name: bytes) -> int:
    """Where the item ``name`` whose start tag ends at ``at`` ends, its end tag included.

    Its first end tag is the one, unless a comment, a processing instruction, a
    CDATA section still open there or an item start tag comes before it: then the
    item is read token by token.
    """
    end_tag = b"</" + name
    found = data.find(end_tag, at)
    after = found + len(end_tag)
    if found >= 0 and data[after : after + 1] == b">" and _plain(data, at, found):
        return after + 1
    return _item_end_by_tokens(data, at)


def _plain(data: bytes, start: int, end: int) -> bool:
    if data.find(b"<!--", start, end) >= 0 or data.find(b"<?", start, end) >= 0:
        return False
    # The last "<![CDATA[" before ``end`` is an open section or text inside one; either
    # way the first "]]>" after it closes the section (sections do not nest).
    opened = data.rfind(b"<![CDATA[", start, end)
    if opened >= 0 and data.find(b"]]>", opened, end) < 0:
        return False
    return _ITEM_START.search(data, start, end) is None


def _item_end_by_tokens(data: bytes, at: int) -> int:
    while match := _INSIDE.search(data, at):
        token = match[0]
        if token in _JUMPS:
            at = _jump(data, match.end(), _JUMPS[token])
        elif token.startswith(b"</"):
            return data.index(b">", match.end()) + 1
        else:
            raise _Unsplittable  # an item in an item: feedparser's entries are not these
    raise _Unsplittable


def _jump(data: bytes, at: int, end: bytes) -> int:
    found = data.find(end, at)
    if found < 0:
        raise _Unsplittable
    return found + len(end)


def _unsplittable(*args: object) -> None:
    raise _Unsplittable


def _refuse(*args: object) -> None:
    raise ParseError(REFUSED)  # refused before already: this pass refuses them too
