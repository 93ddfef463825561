"""One story across sources: which stored entry, if any, tells the same event.

Candidates come from the band table: stored entries sharing at least one LSH
band key with the new entry (their Jaccard is likely above about 0.15, see
``minhash``), or one of its exact keys. The decision is made on what the
store keeps of both:

* an exact key in common (same link, or same guid and title) is the same
  story, as the exact dedupe always said;
* otherwise the two must come from different sources (an outlet does not
  report its own event twice: a second item is a follow-up, and series parts
  are never copies), within ``CLUSTER_WINDOW`` of each other, with a Jaccard
  of their shingles of at least ``JACCARD_MIN``, and with names and amounts
  that agree (``NAMES_MIN``).

The last check is what keeps templated reports of different events apart:
the news agency's "tỉnh Hà Tĩnh tổ chức tổng kết chương trình xóa nhà tạm…
hoàn thành 2.343 ngôi nhà" and the same sentence for Nghệ An with 8.250
houses are closer in Jaccard than many rewrites of one event, but share no
place name and no amount. The new entry joins the cluster of its most
similar match; the cluster id is the first member's entry id and never
changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from feedsvc.model import Entry
from feedsvc.stories.model import Cluster, ClusterCandidate, StoryContext, StoryFeatures

CLUSTER_WINDOW = timedelta(days=3)
# The most recent stored entries per band key a lookup returns. A story has a few
# outlets; a key that hundreds of entries share is a feed's template ("Tin 12: …"),
# and without a bound every new item of such a feed compared itself with all before.
CANDIDATES_PER_BAND = 20
JACCARD_MIN = 0.16
NAMES_MIN = 0.5  # share of the smaller set of names and amounts found in the other


def choose_cluster(new: StoryFeatures, candidates: Sequence[ClusterCandidate]) -> Cluster:
    """The cluster ``new`` joins: its best match's, or a new one of its own."""
    best: Cluster | None = None
    for candidate in candidates:
        if candidate.entry_id == new.entry_id:
            continue
        similarity = same_story(new, candidate)
        if similarity is None:
            continue
        if best is None or (similarity, -candidate.cluster_id) > (
            best.similarity,
            -best.cluster_id,
        ):
            best = Cluster(candidate.cluster_id, candidate.entry_id, similarity)
    return best or Cluster(new.entry_id)


def same_story(new: StoryFeatures, stored: ClusterCandidate) -> float | None:
    """How alike two entries are if they tell the same story (1.0 for an exact copy), else None."""
    if new.exact_keys & stored.exact_keys:
        return 1.0
    if new.source_id == stored.source_id:
        return None
    if abs(new.published - stored.published) > CLUSTER_WINDOW:
        return None
    similarity = jaccard(new.shingles, stored.shingles)
    if similarity < JACCARD_MIN or not names_agree(new.names, stored.names):
        return None
    return similarity


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    """|a ∩ b| / |a ∪ b|, 0 for two empty sets."""
    if not a or not b:
        return 0.0
    common = len(a & b)
    return common / (len(a) + len(b) - common)


def names_agree(a: frozenset[int], b: frozenset[int]) -> bool:
    """Whether two texts' names and amounts agree: no evidence (an empty side) agrees."""
    if not a or not b:
        return True
    return len(a & b) / min(len(a), len(b)) >= NAMES_MIN


def one_per_story(entries: Sequence[Entry], stories: Mapping[int, StoryContext]) -> list[Entry]:
    """Keep one entry per story (cluster): the one published first (then the smallest id).

    Entries without a story context (not detected yet) are kept. The kept
    entries come back in their input order.
    """
    first: dict[int, Entry] = {}
    for entry in entries:
        story = stories.get(entry.id)
        if story is None or story.cluster_id is None:
            continue
        kept = first.get(story.cluster_id)
        if kept is None or _seniority(entry) < _seniority(kept):
            first[story.cluster_id] = entry
    shown = {entry.id for entry in first.values()}
    return [
        entry
        for entry in entries
        if entry.id in shown or stories.get(entry.id, _UNDETECTED).cluster_id is None
    ]


_UNDETECTED = StoryContext()


def _seniority(entry: Entry) -> tuple[datetime, int]:
    return (entry.date, entry.id)
