"""Detection of one new entry: its story, its series and its related stories.

The decisions are pure functions of the entry and of candidate rows
(``clusters``, ``series``, ``related``); this module only says which rows
each needs, as the ``StoryIndex`` protocol that the store implements in SQL
(and ``memory.MemoryIndex`` over dicts, for tests, the benchmark and one-off
batches). Every value the protocol returns is in the database, so any
process that detects an entry gets the same answer from the same rows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from feedsvc.stories import terms as term_vectors
from feedsvc.stories.clusters import CLUSTER_WINDOW, choose_cluster
from feedsvc.stories.features import extract
from feedsvc.stories.model import (
    ClusterCandidate,
    Detection,
    RelatedCandidate,
    SeriesCandidate,
    StoryText,
)
from feedsvc.stories.related import RELATED_WINDOW, choose_related
from feedsvc.stories.series import SERIES_WINDOW, choose_series


class StoryIndex(Protocol):
    """The store's lookups that detection needs (see the module docstring)."""

    def size(self) -> int:
        """How many entries have been detected and stored."""
        ...

    def frequencies(self, terms: Iterable[int]) -> Mapping[int, int]:
        """For each term, the number of stored entries that have it (absent: none)."""
        ...

    def cluster_candidates(
        self, bands: Collection[int], exact: Collection[int], since: datetime
    ) -> Sequence[ClusterCandidate]:
        """Entries sharing a band key (published since ``since``) or any exact key."""
        ...

    def series_candidates(self, source_id: str, since: datetime) -> Sequence[SeriesCandidate]:
        """Series parts of ``source_id`` published since ``since``."""
        ...

    def related_candidates(
        self, terms: Sequence[int], since: datetime
    ) -> Sequence[RelatedCandidate]:
        """Entries published since ``since`` that posted one of ``terms``.

        The most recent ``related.CANDIDATES_PER_TERM`` per term are enough: a
        term in more stories than that in a month says little about a subject.
        """
        ...


def detect(story: StoryText, index: StoryIndex, *, now: datetime) -> Detection:
    """Decide ``story``'s cluster, series and related stories from what ``index`` holds.

    ``now`` bounds the entry's date: a publisher's date in the future is read
    as now, so the windows stay about the past.
    """
    features = extract(story)
    published = min(features.published, now)
    frequencies = index.frequencies(features.terms.keys())
    vector = term_vectors.weigh(features.terms, frequencies, index.size())
    since = published - CLUSTER_WINDOW
    cluster = choose_cluster(
        features, index.cluster_candidates(features.band_keys, features.exact_keys, since)
    )
    series = choose_series(
        story.entry_id,
        features.marker,
        vector,
        index.series_candidates(story.source_id, published - SERIES_WINDOW)
        if features.marker
        else (),
    )
    # Only terms some stored entry has can find anything: the heaviest of those.
    query = term_vectors.heaviest_terms(vector, term_vectors.QUERY_TERMS, among=frequencies)
    related = choose_related(
        entry_id=story.entry_id,
        cluster_id=cluster.cluster_id,
        series_id=series.series_id if series else None,
        published=published,
        vector=vector,
        candidates=index.related_candidates(query, published - RELATED_WINDOW),
    )
    return Detection(features, vector, cluster, series, related)
