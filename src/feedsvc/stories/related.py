"""Related stories ("Đọc thêm"): earlier stories about the same subject.

For a new entry, up to ``RELATED_LIMIT`` stories from the ``RELATED_WINDOW``
before it, from any source, ranked by the cosine of their TF-IDF vectors.
Never a copy of the entry's own story (its cluster: those are "Cũng đưa
tin") and never a part of its own series (those are listed as the series);
one entry per story, the one closest to the new entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from feedsvc.stories.model import Related, RelatedCandidate, TermVector

RELATED_WINDOW = timedelta(days=30)
RELATED_LIMIT = 3
RELATED_MIN = 0.15  # cosine; below it two stories only share their setting
CANDIDATES_PER_TERM = 100  # most recent entries per query term the store returns


def choose_related(
    *,
    entry_id: int,
    cluster_id: int,
    series_id: int | None,
    published: datetime,
    vector: TermVector,
    candidates: Sequence[RelatedCandidate],
) -> tuple[Related, ...]:
    """The related stories of a new entry, best first.

    Args:
        candidates: stored entries that share a query term with the new one
            (the store's lookup); those outside the window before
            ``published`` are ignored here as well.
    """
    since = published - RELATED_WINDOW
    best: dict[int, Related] = {}
    for candidate in candidates:
        if candidate.entry_id == entry_id or candidate.cluster_id == cluster_id:
            continue
        if series_id is not None and candidate.series_id == series_id:
            continue
        if not since <= candidate.published <= published:
            continue
        similarity = vector.cosine(candidate.vector)
        if similarity < RELATED_MIN:
            continue
        kept = best.get(candidate.cluster_id)
        if kept is None or similarity > kept.similarity:
            best[candidate.cluster_id] = Related(
                candidate.entry_id, candidate.cluster_id, similarity
            )
    ranked = sorted(best.values(), key=lambda r: (-r.similarity, r.entry_id))
    return tuple(ranked[:RELATED_LIMIT])
