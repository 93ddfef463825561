"""A decoded document split into its items, each keyed by a hash of what it parses from.

A news feed re-fetched every few minutes is mostly the items already stored:
hashing each item's bytes tells the ones seen before from the new and edited
ones, and only those need feedparser (``ingest.parse``). One expat pass finds
where each item starts and ends; it builds nothing, reads nothing external and
refuses what the entity guard refuses (``ingest._xml``).

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
from collections.abc import Collection
from dataclasses import dataclass
from xml.parsers import expat

import feedparser

from feedsvc.errors import ParseError
from feedsvc.ingest._xml import REFUSED

# Raise it when a change to parse.py or _fields.py reads a stored item differently.
KEY_VERSION = f"1 feedparser {feedparser.__version__}"
_ITEM_NAMES = frozenset({"item", "entry"})


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


def split(data: bytes, context: str) -> Split | None:
    """Split the UTF-8 document ``data`` into its items, or None if it cannot be split exactly.

    ``context`` names what the caller reads every entry against (URL, headers).
    """
    walk = _Walk(data, f"{KEY_VERSION}\n{context}\n".encode())
    try:
        walk.parser.Parse(data, True)
    except (expat.ExpatError, _Unsplittable):
        return None
    return Split(data, tuple(walk.items))


class _Walk:
    def __init__(self, data: bytes, context: bytes) -> None:
        self.items: list[Item] = []
        self.parser = parser = expat.ParserCreate()
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.StartDoctypeDeclHandler = self._unsplittable
        parser.EntityDeclHandler = self._refuse
        self._data = data
        self._context = context
        self._open: list[bytes] = []  # each open element outside items: name and attributes
        self._item_start = -1  # where the open item starts; -1 outside items
        self._depth = 0  # elements open inside the item, itself included

    def _start(self, name: str, attributes: dict[str, str]) -> None:
        if self._item_start >= 0:
            if name.rpartition(":")[2].lower() in _ITEM_NAMES:
                raise _Unsplittable  # feedparser's entries would not be these elements
            self._depth += 1
        elif name.rpartition(":")[2].lower() in _ITEM_NAMES:
            self._item_start = self.parser.CurrentByteIndex
            self._depth = 1
        else:
            self._open.append(f"{name} {sorted(attributes.items())!r}\n".encode())

    def _end(self, name: str) -> None:
        if self._item_start < 0:
            self._open.pop()
            return
        self._depth -= 1
        if self._depth:
            return
        at = self.parser.CurrentByteIndex
        if not self._data.startswith(b"</", at):
            raise _Unsplittable  # <item/>: where its tag ends is not worth finding
        end = self._data.index(b">", at) + 1
        digest = hashlib.blake2b(self._context, digest_size=16)
        for tag in self._open:
            digest.update(tag)
        digest.update(memoryview(self._data)[self._item_start : end])
        self.items.append(Item(self._item_start, end, digest.hexdigest()))
        self._item_start = -1

    @staticmethod
    def _unsplittable(*args: object) -> None:
        raise _Unsplittable

    @staticmethod
    def _refuse(*args: object) -> None:
        raise ParseError(REFUSED)  # refused before already: this pass refuses them too
