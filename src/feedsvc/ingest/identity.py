"""Which stored entry a parsed entry is, and whether a reader would see it changed.

An entry's identity is its guid, else its normalized link, else a fingerprint of
its title and content (DESIGN.md, invariant 1). The identity must not move when
only the bytes move: the same article in NFD, in windows-1258 or with padding
around its guid has the same identity, because every input here is already
cleaned to NFC single lines by the parser. ``content_hash`` is the other half:
same identity plus a different hash means "edited, update in place".
Links are compared as ``stories.exact.normalize_link`` says, the one home of
what makes two links the same.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from feedsvc.model import Enclosure
from feedsvc.stories.exact import normalize_link

FINGERPRINT_PREFIX = "sha256:"


def entry_identity(
    guid: str | None,
    link: str | None,
    title: str,
    content: str,
    *,
    summary: str = "",
    author: str | None = None,
    categories: Sequence[str] = (),
    enclosures: Sequence[Enclosure] = (),
) -> str:
    """Return the identity of an entry: guid, else normalized link, else a fingerprint.

    The fingerprint covers every field a reader sees, so two items that differ
    only in their author or their enclosure (the same bulletin read by two
    people, or in two files) stay two entries. ``summary`` is given only when
    it is a field of its own, not text taken from ``content``. All arguments are
    expected cleaned (NFC, trimmed), as the parser produces them.
    """
    if guid:
        return guid
    if link:
        return normalize_link(link)
    text = f"{title}\n{content}"
    if summary or author or categories or enclosures:
        # Appended only when present: an entry with nothing beyond title and content
        # keeps the fingerprint it was stored under before these fields counted.
        text += "\n" + _serialize([summary, author, list(categories), _enclosures(enclosures)])
    return FINGERPRINT_PREFIX + hashlib.sha256(text.encode()).hexdigest()


def content_hash(
    *,
    title: str,
    link: str | None,
    summary: str,
    content: str,
    author: str | None,
    categories: Sequence[str],
    enclosures: Sequence[Enclosure],
) -> str:
    """Return a sha256 hex digest of everything a reader of the entry sees.

    The fields are serialized as one JSON array, so no two different entries
    can collide by moving text from one field to the next.
    """
    fields = [title, link, summary, content, author, list(categories), _enclosures(enclosures)]
    return hashlib.sha256(_serialize(fields).encode()).hexdigest()


def _serialize(fields: Sequence[object]) -> str:
    """One JSON array: no two different entries collide by moving text between fields."""
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def _enclosures(enclosures: Sequence[Enclosure]) -> list[list[object]]:
    return [[e.url, e.type, e.length] for e in enclosures]
