"""TF-IDF over syllables: how alike two entries' subjects are.

An entry's term weights (``StoryFeatures.terms``: counts of syllables and
syllable pairs, stop syllables at a tenth) are turned into a unit vector with
the inverse document frequency of each term among the stored entries, so that
"Hà Tĩnh", in every story of a provincial paper, counts little and "đuối
nước" counts much. The frequencies are the store's (a count per term); a
store that is still empty gives every term the same weight, and the stop
weights alone keep function words down.

The store keeps each entry's vector cut to its ``VECTOR_TERMS`` heaviest
terms (re-scaled to unit length) and posts its ``POSTED_TERMS`` heaviest in
an inverted index; a new entry looks up its ``QUERY_TERMS`` heaviest there.
A vector is weighed once, when its entry arrives, with the frequencies of
that moment.
"""

from __future__ import annotations

import math
from collections.abc import Container, Mapping

from feedsvc.stories.model import TermVector

VECTOR_TERMS = 1000
POSTED_TERMS = 16
QUERY_TERMS = 12


def weigh(terms: Mapping[int, float], frequencies: Mapping[int, int], total: int) -> TermVector:
    """The unit TF-IDF vector of ``terms``, cut to its ``VECTOR_TERMS`` heaviest terms.

    Args:
        terms: the entry's weighted term counts.
        frequencies: for each of those terms, the number of stored entries that
            have it (absent means none).
        total: the number of stored entries.
    """
    weights = {
        term: (1.0 + math.log(count) if count >= 1 else count)
        * (math.log((total + 1) / (frequencies.get(term, 0) + 1)) + 1.0)
        for term, count in terms.items()
    }
    heaviest = sorted(weights.items(), key=lambda item: item[1], reverse=True)[:VECTOR_TERMS]
    norm = math.sqrt(sum(w * w for _, w in heaviest)) or 1.0
    return TermVector({term: w / norm for term, w in heaviest})


def heaviest_terms(
    vector: TermVector, limit: int, among: Container[int] | None = None
) -> tuple[int, ...]:
    """The ``limit`` terms of ``vector`` with the largest weights (of those ``among``)."""
    items = vector.weights.items()
    if among is not None:
        items = [(term, w) for term, w in items if term in among]  # type: ignore[assignment]
    ranked = sorted(items, key=lambda item: item[1], reverse=True)
    return tuple(term for term, _ in ranked[:limit])
