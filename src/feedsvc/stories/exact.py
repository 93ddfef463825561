"""Exact copies of a story: the same link, or the same guid with the same title.

This is story identity's exact half, the one module that owns what "the same
story" means: ingest's identities use ``normalize_link``, and the feeds and the
digest ``dedupe`` (what detection has not seen yet, and exact twins).
``exact_keys`` gives the same sameness as keys for the store's band table: an
entry that shares one with a stored entry is in its story, whatever the text
says.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from urllib.parse import SplitResult, urlsplit, urlunsplit

from feedsvc._text import clean_line
from feedsvc.model import Entry
from feedsvc.stories.minhash import hash64

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


def story_keys(link: str | None, guid: str | None, title: str) -> Iterator[tuple[str, ...]]:
    """What identifies an entry's story across sources, exactly.

    A guid alone is not enough: two papers' CMSs may number their articles
    alike ("12345"), so it must come with the same title. A title alone is
    not enough either ("Thời tiết hôm nay" recurs daily).
    """
    if link:
        yield ("link", normalize_link(link))
    if guid:
        yield ("guid", guid, clean_line(title))


def exact_keys(link: str | None, guid: str | None, title: str) -> frozenset[int]:
    """``story_keys`` as signed 64-bit hashes, in a domain of their own beside the band keys."""
    keys = set()
    for key in story_keys(link, guid, title):
        h = hash64("\x00".join(("exact", *key)))
        keys.add(h - (1 << 64) if h >> 63 else h)
    return frozenset(keys)


def dedupe(entries: Sequence[Entry]) -> list[Entry]:
    """Keep one entry per story: the earliest seen (smallest ``first_seen``, then id).

    Two entries are the same story when they share a normalized link (scheme and
    host case, fragment and ``utm_*`` parameters ignored), or a guid together
    with the same title compared in NFC. Sameness is transitive: a twin of a
    twin is the same story. The kept entries come back in their input order.
    """
    kept = set(_eldest(entries))
    return [entry for index, entry in enumerate(entries) if index in kept]


def story_ids(entries: Sequence[Entry]) -> dict[int, int]:
    """Each entry's id mapped to the id of its story's kept copy (as :func:`dedupe` keeps)."""
    eldest = _eldest(entries)
    return {entry.id: entries[eldest[index]].id for index, entry in enumerate(entries)}


def _eldest(entries: Sequence[Entry]) -> list[int]:
    """For each entry's index, the index of its story's earliest seen copy."""
    stories = _Stories(len(entries))
    owner: dict[tuple[str, ...], int] = {}
    for index, entry in enumerate(entries):
        for key in story_keys(entry.link, entry.guid, entry.title):
            stories.join(index, owner.setdefault(key, index))
    eldest: dict[int, int] = {}
    for index, entry in enumerate(entries):
        story = stories.find(index)
        if story not in eldest or _seniority(entry) < _seniority(entries[eldest[story]]):
            eldest[story] = index
    return [eldest[stories.find(index)] for index in range(len(entries))]


def _seniority(entry: Entry) -> tuple[datetime, int]:
    return (entry.first_seen, entry.id)


class _Stories:
    """Union-find over entry indexes: which entries tell the same story."""

    def __init__(self, size: int) -> None:
        self._parent = list(range(size))

    def find(self, index: int) -> int:
        parent = self._parent
        while parent[index] != index:
            parent[index] = parent[parent[index]]  # path halving keeps chains short
            index = parent[index]
        return index

    def join(self, a: int, b: int) -> None:
        self._parent[self.find(a)] = self.find(b)


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
