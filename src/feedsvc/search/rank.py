"""Ranking the candidates a backend found: exact tones first, then relevance, then recency.

The backends only find (the newest matching entries, at most
:data:`CANDIDATES`, with the folded words the index holds for each); the order
is decided here, in Python, so SQLite and PostgreSQL give the same ranked ids
for the same data, and a word found in half the entries costs one bounded read,
not a sort of half the index.

For each term of the query an entry scores its occurrences in the title and in
the body, each saturated (``n / (n + 1)``: the tenth repeat adds little), the
title's counting twice (no body outweighs a title that names the subject); the
score is the sum over terms. When the reader typed tones, an entry with more of
those terms written with the same tones ranks above every other ("lúa" finds
"lúa" before "lừa"). Recency breaks ties: the entry stored last (the larger id)
first, since publishers' dates are often wrong.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from feedsvc.search.query import Query, Term

CANDIDATES = 150
"""The newest matching entries a search reads and ranks."""

RANK_WORDS = 120
"""Words of an entry's body that count for relevance (the lead says what it is about)."""

_TITLE_WEIGHT = 2.0


@dataclass(frozen=True, slots=True)
class Candidate:
    """An entry the index matched: its indexed (folded) words, how many are the title's,
    and, for a query with tones, its title and body text caseless (``str.casefold``)."""

    entry_id: int
    words: Sequence[str]
    title_words: int
    toned_text: str = ""


@dataclass(frozen=True, slots=True)
class Ranked:
    entry_id: int
    exact: int  # the toned terms found with the same tones
    score: float


def rank(query: Query, candidates: Sequence[Candidate], limit: int) -> list[Ranked]:
    """The best ``limit`` of ``candidates`` for ``query``, best first."""
    toned = [_toned_pattern(term) for term in query.terms if term.has_tones]
    ranked = [_score(query, toned, c) for c in candidates]
    ranked.sort(key=lambda r: (-r.exact, -r.score, -r.entry_id))
    return ranked[:limit]


def needs_text(query: Query) -> bool:
    """Whether ranking reads the candidates' toned text (the query has tones)."""
    return any(term.has_tones for term in query.terms)


def _score(query: Query, toned: list[re.Pattern[str]], candidate: Candidate) -> Ranked:
    words = list(candidate.words)
    title = words[: candidate.title_words]
    body = words[candidate.title_words : candidate.title_words + RANK_WORDS]
    score = 0.0
    for term in query.terms:
        score += _TITLE_WEIGHT * _saturated(_count(term, title)) + _saturated(_count(term, body))
    exact = sum(1 for pattern in toned if pattern.search(candidate.toned_text))
    return Ranked(candidate.entry_id, exact, round(score, 9))


def _toned_pattern(term: Term) -> re.Pattern[str]:
    """The term as typed (tones and all) as a run of whole words in caseless text."""
    words = [re.escape(w) for w in term.toned]
    tail = r"\w*" if term.prefix else r"(?!\w)"
    return re.compile(r"(?<!\w)" + r"[\W_]+".join(words) + tail)


def _saturated(n: int) -> float:
    return n / (n + 1)


def _count(term: Term, words: list[str]) -> int:
    """Occurrences of ``term`` (folded) in ``words``; ``list.index`` finds each start."""
    wanted, prefix = term.folded, term.prefix
    if len(wanted) == 1:
        if prefix:
            return sum(1 for w in words if w.startswith(wanted[0]))
        return words.count(wanted[0])
    first, middle, last = wanted[0], list(wanted[1:-1]), wanted[-1]
    found, at = 0, 0
    while True:
        try:
            i = words.index(first, at)
        except ValueError:
            return found
        end = i + len(wanted) - 1
        if end < len(words) and words[i + 1 : end] == middle:
            found += words[end].startswith(last) if prefix else words[end] == last
        at = i + 1
