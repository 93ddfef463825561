"""``StoryIndex`` over dicts: the store's story tables, held in memory.

It is the reference the SQL store must agree with (the same rows give the
same candidates), and what the tests and the benchmark run detection on. A
service never uses it: its state would live in one process only, and every
process must see the same stories. Each dict below stands for a table of the
proposal in docs (the lead's), named in its comment.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from feedsvc.stories import terms as term_vectors
from feedsvc.stories.clusters import CANDIDATES_PER_BAND
from feedsvc.stories.model import (
    ClusterCandidate,
    Detection,
    RelatedCandidate,
    Series,
    SeriesCandidate,
    StoryFeatures,
    TermVector,
)
from feedsvc.stories.related import CANDIDATES_PER_TERM

# Entries are added in about the order of their dates; a list scanned newest
# first may stop once it is this far before the window.
_DISORDER = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class _Stored:
    """One row of ``story_entries``: an entry's features, vector and decisions."""

    features: StoryFeatures
    vector: TermVector
    cluster_id: int
    series: Series | None


class MemoryIndex:
    """The story tables of one store, in dicts; ``add`` is the store's write."""

    def __init__(self) -> None:
        self._entries: dict[int, _Stored] = {}  # story_entries
        self._bands: dict[int, list[int]] = {}  # story_bands (key -> entry ids)
        self._postings: dict[int, list[int]] = {}  # story_terms (term -> entry ids)
        self._frequencies: dict[int, int] = {}  # story_term_counts
        self._series_parts: dict[str, list[int]] = {}  # story_entries where series_id is set

    def add(self, detection: Detection) -> None:
        """Store what was decided about a new entry (in the store: one transaction)."""
        features = detection.features
        entry_id = features.entry_id
        self._entries[entry_id] = _Stored(
            features, detection.vector, detection.cluster.cluster_id, detection.series
        )
        for key in (*features.band_keys, *features.exact_keys):
            self._bands.setdefault(key, []).append(entry_id)
        for term in term_vectors.heaviest_terms(detection.vector, term_vectors.POSTED_TERMS):
            self._postings.setdefault(term, []).append(entry_id)
        for term in features.terms:
            self._frequencies[term] = self._frequencies.get(term, 0) + 1
        if detection.series is not None:
            self._series_parts.setdefault(features.source_id, []).append(entry_id)

    def cluster_of(self, entry_id: int) -> int:
        return self._entries[entry_id].cluster_id

    def series_of(self, entry_id: int) -> Series | None:
        return self._entries[entry_id].series

    def size(self) -> int:
        return len(self._entries)

    def frequencies(self, terms: Iterable[int]) -> Mapping[int, int]:
        known = self._frequencies
        return {term: known[term] for term in terms if term in known}

    def cluster_candidates(
        self, bands: Collection[int], exact: Collection[int], since: datetime
    ) -> Sequence[ClusterCandidate]:
        found: dict[int, ClusterCandidate] = {}
        exact = set(exact)
        for key in (*bands, *exact):
            taken = 0
            for entry_id in reversed(self._bands.get(key, ())):  # newest first
                stored = self._entries[entry_id]
                if key not in exact:
                    if stored.features.published < since:
                        if stored.features.published < since - _DISORDER:
                            break  # as an index on (band_key, published_at) stops
                        continue
                    taken += 1
                    if taken > CANDIDATES_PER_BAND:
                        break
                if entry_id in found:
                    continue
                f = stored.features
                found[entry_id] = ClusterCandidate(
                    entry_id, f.source_id, f.published, stored.cluster_id,
                    f.exact_keys, f.shingles, f.names,
                )  # fmt: skip
        return list(found.values())

    def series_candidates(self, source_id: str, since: datetime) -> Sequence[SeriesCandidate]:
        found = []
        for entry_id in self._series_parts.get(source_id, ()):
            stored = self._entries[entry_id]
            f, series = stored.features, stored.series
            if series is None or f.published < since:
                continue
            kicker = f.marker.kicker if f.marker else ""
            found.append(
                SeriesCandidate(
                    entry_id, series.series_id, series.part, kicker, f.published, stored.vector
                )
            )
        return found

    def related_candidates(
        self, terms: Sequence[int], since: datetime
    ) -> Sequence[RelatedCandidate]:
        found: dict[int, RelatedCandidate] = {}
        for term in terms:
            for entry_id in self._postings.get(term, [])[-CANDIDATES_PER_TERM:]:
                stored = self._entries[entry_id]
                if entry_id in found or stored.features.published < since:
                    continue
                series_id = stored.series.series_id if stored.series else None
                found[entry_id] = RelatedCandidate(
                    entry_id, stored.cluster_id, series_id, stored.features.published,
                    stored.vector,
                )  # fmt: skip
        return list(found.values())
