"""One copy of each story in a feed that gathers several sources.

A story often reaches one category from two sources: the section feed and the
home-page feed of the same paper, one of them adding ``utm_*`` parameters or
delivering the title decomposed (NFD). Entries are stored once per source (the
store's identity is per source), so the twins have different ids; a reader
would see the story twice. Here they are folded into the copy seen first, so
the surviving id never changes as later twins arrive.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from feedsvc._text import clean_line
from feedsvc.ingest.identity import normalize_link
from feedsvc.model import Entry


def dedupe(entries: Sequence[Entry]) -> list[Entry]:
    """Keep one entry per story: the earliest seen (smallest ``first_seen``, then id).

    Two entries are the same story when they share a normalized link (scheme and
    host case, fragment and ``utm_*`` parameters ignored), or a guid together
    with the same title compared in NFC. Sameness is transitive: a twin of a
    twin is the same story. The kept entries come back in their input order.
    """
    stories = _Stories(len(entries))
    owner: dict[tuple[str, ...], int] = {}
    for index, entry in enumerate(entries):
        for key in _story_keys(entry):
            stories.join(index, owner.setdefault(key, index))
    eldest: dict[int, int] = {}
    for index, entry in enumerate(entries):
        story = stories.find(index)
        if story not in eldest or _seniority(entry) < _seniority(entries[eldest[story]]):
            eldest[story] = index
    kept = set(eldest.values())
    return [entry for index, entry in enumerate(entries) if index in kept]


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


def _story_keys(entry: Entry) -> Iterator[tuple[str, ...]]:
    """What identifies ``entry``'s story across sources.

    A guid alone is not enough: two papers' CMSs may number their articles
    alike ("12345"), so it must come with the same title. A title alone is
    not enough either ("Thời tiết hôm nay" recurs daily).
    """
    if entry.link:
        yield ("link", normalize_link(entry.link))
    if entry.guid:
        yield ("guid", entry.guid, clean_line(entry.title))
