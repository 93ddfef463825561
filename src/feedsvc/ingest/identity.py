"""Which stored entry a parsed entry is, and whether a reader would see it changed.

An entry's identity is its guid, else its normalized link, else a fingerprint of
its title and content (DESIGN.md, invariant 1). The identity must not move when
only the bytes move: the same article in NFD, in windows-1258 or with padding
around its guid has the same identity, because every input here is already
cleaned to NFC single lines by the parser. ``content_hash`` is the other half:
same identity plus a different hash means "edited, update in place".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from urllib.parse import SplitResult, urlsplit, urlunsplit

from feedsvc._text import clean_line
from feedsvc.model import Enclosure

FINGERPRINT_PREFIX = "sha256:"
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def normalize_link(url: str) -> str:
    """Return ``url`` in the form used to compare links across polls and sources.

    Lower-cases scheme and host, drops a default port, the fragment and ``utm_*``
    tracking parameters, and keeps every other query parameter in its order and
    spelling (some CMSs route on parameter order). Never raises: a URL that
    cannot be split is returned cleaned but otherwise as given.
    """
    url = clean_line(url)
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced "[" in the host
        return url
    if not parts.scheme or not parts.netloc:
        return urlunsplit(parts._replace(fragment=""))
    return urlunsplit(
        SplitResult(
            scheme=parts.scheme.lower(),
            netloc=_normalize_netloc(parts.netloc, parts.scheme.lower()),
            path=parts.path or "/",
            query=_drop_tracking(parts.query),
            fragment="",
        )
    )


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


def _normalize_netloc(netloc: str, scheme: str) -> str:
    userinfo, at, hostport = netloc.rpartition("@")
    host, colon, port = hostport.rpartition(":")
    if not colon or "]" in port:  # no port, or the colon was inside an IPv6 literal
        host, port = hostport, ""
    if port == _DEFAULT_PORTS.get(scheme) or (colon and not port):
        port = ""
    return f"{userinfo}{at}{host.lower()}{':' if port else ''}{port}"


def _drop_tracking(query: str) -> str:
    if "utm_" not in query.lower():
        return query
    kept = [p for p in query.split("&") if not p.lower().startswith("utm_")]
    return "&".join(kept)
