"""What goes into story detection and what comes out, as plain data.

``StoryText`` is what detection reads of an entry. ``StoryFeatures`` and
``TermVector`` are what the store keeps per entry so that later entries can
be compared with it without its text; the candidate types are the rows the
store's lookups return; ``Detection`` is everything decided about one new
entry, for the store to write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from feedsvc.model import Entry, StoryRef

__all__ = ["StoryRef"]  # defined in model: digests carry it


@dataclass(frozen=True, slots=True)
class StoryText:
    """An entry as story detection reads it.

    ``summary`` is plain text and ``content`` sanitized HTML, as the parser
    stores them; ``published`` is the date the entry is shown and sorted by
    (the publisher's, else when feedsvc first saw it).
    """

    entry_id: int
    source_id: str
    title: str
    published: datetime
    summary: str = ""
    content: str = ""
    link: str | None = None
    guid: str | None = None

    @classmethod
    def from_entry(cls, entry: Entry) -> StoryText:
        return cls(
            entry_id=entry.id,
            source_id=entry.source_id,
            title=entry.title,
            published=entry.date,
            summary=entry.summary,
            content=entry.content,
            link=entry.link,
            guid=entry.guid,
        )


@dataclass(frozen=True, slots=True)
class SeriesMarker:
    """A title's "Bài 2:" / "Kỳ 3:" / "(Tiếp theo)": the part, and what is left of the title.

    ``part`` is None for a continuation without a number ("(Tiếp theo)",
    "Bài cuối"): it is the part after the last one known. ``kicker`` is the
    series' own title when the title carries one before the marker ("Giữ rừng
    Vũ Quang - Kỳ 1: …"), folded for comparison, else "".
    """

    part: int | None
    kicker: str
    rest: str


@dataclass(frozen=True, slots=True)
class TermVector:
    """TF-IDF weights of an entry's syllables and syllable pairs, unit length.

    Keys are 63-bit term hashes (``terms.term_id``), a BIGINT each.
    """

    weights: Mapping[int, float]

    def cosine(self, other: TermVector) -> float:
        """The cosine of two unit vectors: their dot product over shared terms."""
        a, b = self.weights, other.weights
        return sum(a[term] * b[term] for term in a.keys() & b.keys())


@dataclass(frozen=True, slots=True)
class StoryFeatures:
    """What the store keeps about an entry's text: everything a comparison needs.

    ``band_keys`` (the LSH bands) and ``exact_keys`` both go to the band
    table, in hash domains of their own;
    ``shingles`` and ``names`` are 32-bit hashes, a few hundred bytes;
    ``terms`` are the weighted term counts (before IDF) that the vector is
    made from.
    """

    entry_id: int
    source_id: str
    published: datetime
    band_keys: tuple[int, ...]
    exact_keys: frozenset[int]
    shingles: frozenset[int]
    names: frozenset[int]
    terms: Mapping[int, float]
    marker: SeriesMarker | None
    title: str


@dataclass(frozen=True, slots=True)
class ClusterCandidate:
    """A stored entry that shares a band key (or an exact key) with the new one."""

    entry_id: int
    source_id: str
    published: datetime
    cluster_id: int
    exact_keys: frozenset[int]
    shingles: frozenset[int]
    names: frozenset[int]


@dataclass(frozen=True, slots=True)
class Cluster:
    """The story an entry belongs to: the cluster of its best match, or its own.

    ``cluster_id`` is the entry id of the cluster's first member, so it never
    changes once given; ``matched`` is the entry it was matched to (None when
    it starts its own story) and ``similarity`` the Jaccard of that match.
    """

    cluster_id: int
    matched: int | None = None
    similarity: float = 0.0


@dataclass(frozen=True, slots=True)
class SeriesCandidate:
    """A stored part of a series from the same source, recent enough to continue."""

    entry_id: int
    series_id: int
    part: int
    kicker: str
    published: datetime
    vector: TermVector


@dataclass(frozen=True, slots=True)
class Series:
    """The series an entry is a part of: ``series_id`` is the entry id of its first part."""

    series_id: int
    part: int
    matched: int | None = None  # the stored part it was matched to
    similarity: float = 0.0


@dataclass(frozen=True, slots=True)
class RelatedCandidate:
    """A stored entry that shares one of the new entry's query terms, with what excludes it."""

    entry_id: int
    cluster_id: int
    series_id: int | None
    published: datetime
    vector: TermVector


@dataclass(frozen=True, slots=True)
class Related:
    """One "Đọc thêm" story: the entry that matched best of its cluster, and how well."""

    entry_id: int
    cluster_id: int
    similarity: float


@dataclass(frozen=True, slots=True)
class Detection:
    """Everything decided about one new entry, for the store to write in one transaction."""

    features: StoryFeatures
    vector: TermVector
    cluster: Cluster
    series: Series | None
    related: tuple[Related, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class SeriesContext:
    """The series an entry is a part of: its id (the first part's entry id), a title (the
    first part's), the entry's part and every stored part in part order."""

    id: int
    title: str
    part: int
    parts: tuple[tuple[int, StoryRef], ...]


@dataclass(frozen=True, slots=True)
class StoryContext:
    """What surrounds one entry's story: what a story page, a digest and a feed item show.

    ``also_reported_by`` are the other outlets' reports of the same story (one per
    source, first published first); ``cluster`` every member's entry id, this one
    included, first published first; ``revision`` goes up when any of it changes.
    """

    series: SeriesContext | None = None
    related: tuple[StoryRef, ...] = ()
    also_reported_by: tuple[StoryRef, ...] = ()
    cluster_id: int | None = None
    cluster: tuple[int, ...] = ()
    revision: int = 0
