"""An entry's text as the values the store keeps to compare it later.

Only the title and the lead are read: the summary, or the opening of the
content when a feed gives no summary. One outlet may carry the full article
and another only its lead; the lead is what rewritten copies of one story
share most, and it keeps every entry's features the same small size.

Two kinds of units come out of the syllables. *Shingles* (the syllables that
are not stop syllables, and the pairs of neighbouring syllables that are not
both stop syllables) feed MinHash and the exact Jaccard check. *Terms* are
the same units with a weight each, stop syllables counting a tenth, for the
TF-IDF vectors behind related stories and series. *Names* are the proper
names and amounts of the text ("Thạch Liên", "2343"), which a copy of a story
repeats and a templated report of another event does not.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from feedsvc.stories import minhash
from feedsvc.stories.exact import exact_keys
from feedsvc.stories.model import StoryFeatures, StoryText
from feedsvc.stories.series import parse_marker
from feedsvc.stories.syllables import Syllable, plain_text, syllables

LEAD_SYLLABLES = 120  # about two sentences: a summary's length
STOP_WEIGHT = 0.1  # of a stop syllable, against 1 for any other
PAIR_WITH_STOP_WEIGHT = 0.5  # a pair where one of the two is a stop syllable
_YEARS = range(1900, 2100)


def extract(story: StoryText) -> StoryFeatures:
    """The features of ``story``: band keys, shingle and name hashes, weighted terms."""
    title = syllables(story.title)
    lead = syllables(plain_text(story.summary or story.content))[:LEAD_SYLLABLES]
    hashes: dict[str, int] = {}
    terms: dict[int, float] = {}
    shingles: set[int] = set()
    for text, weight in _units(title, lead):
        h = hashes.get(text)
        if h is None:
            h = hashes[text] = minhash.hash64(text)
        term = h >> 1
        terms[term] = terms.get(term, 0.0) + weight
        if weight > STOP_WEIGHT:  # a pair, or a syllable that is not a stop syllable
            shingles.add(h)
    exact = exact_keys(story.link, story.guid, story.title)
    return StoryFeatures(
        entry_id=story.entry_id,
        source_id=story.source_id,
        published=story.published,
        band_keys=minhash.band_keys(minhash.signature(shingles)),
        exact_keys=exact,
        shingles=frozenset(h >> 32 for h in shingles),
        names=frozenset(minhash.hash64(name) >> 32 for name in _names(title + lead)),
        terms=terms,
        marker=parse_marker(story.title),
        title=story.title,
    )


def _units(title: Sequence[Syllable], lead: Sequence[Syllable]) -> Iterator[tuple[str, float]]:
    """Each syllable and each pair of neighbours (within the title or the lead), weighted."""
    for part in (title, lead):
        for index, syllable in enumerate(part):
            yield syllable.text, STOP_WEIGHT if syllable.stop else 1.0
            if index:
                before = part[index - 1]
                if not (before.stop and syllable.stop):
                    weight = PAIR_WITH_STOP_WEIGHT if before.stop or syllable.stop else 1.0
                    yield f"{before.text} {syllable.text}", weight


def _names(found: Sequence[Syllable]) -> Iterator[str]:
    for syllable in found:
        text = syllable.text
        if syllable.name:
            yield text
        elif text.isdigit() and len(text) >= 3 and int(text) not in _YEARS:
            yield text
