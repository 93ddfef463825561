"""Ranking the candidates a backend found: exact tones first, then relevance, then recency.

The backends only find (the newest matching entries, at most
:data:`CANDIDATES`); the order is decided here, in Python, so SQLite and
PostgreSQL give the same ranked ids for the same data, and a word found in half
the entries costs one bounded read, not a sort of half the index.

For each term of the query an entry scores its occurrences in the title and in
the body, each saturated (``n / (n + 1)``: the tenth repeat adds little), the
title's counting twice (no body outweighs a title that names the subject); the
score is the sum over terms. When the reader typed tones, an entry with
more of those terms written with the same tones ranks above every other
("lúa" finds "lúa" before "lừa"); recency, then the newer id, break ties.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from feedsvc.search.fold import folded_words, toned_words
from feedsvc.search.query import Query, Term

CANDIDATES = 200
"""The newest matching entries a search reads and ranks."""

RANK_WORDS = 300
"""Words of an entry's body that count for relevance."""

_TITLE_WEIGHT = 2.0


@dataclass(frozen=True, slots=True)
class Candidate:
    """An entry the index matched, with the text its rank is decided on."""

    entry_id: int
    title: str
    body: str  # plain text
    date: datetime  # the publisher's date, else when it was first seen


@dataclass(frozen=True, slots=True)
class Ranked:
    entry_id: int
    exact: int  # the toned terms found with the same tones
    score: float


@dataclass(frozen=True, slots=True)
class _Words:
    toned: list[str]
    folded: list[str]

    @classmethod
    def of(cls, text: str, limit: int) -> _Words:
        toned = toned_words(text)[:limit]
        return cls(toned, folded_words(toned))


def rank(query: Query, candidates: Sequence[Candidate], limit: int) -> list[Ranked]:
    """The best ``limit`` of ``candidates`` for ``query``, best first."""
    scored = [(_score(query, c), c) for c in candidates]
    scored.sort(
        key=lambda pair: (
            -pair[0].exact,
            -pair[0].score,
            -pair[1].date.timestamp(),
            -pair[1].entry_id,
        )
    )
    return [ranked for ranked, _ in scored[:limit]]


def _score(query: Query, candidate: Candidate) -> Ranked:
    title = _Words.of(candidate.title, RANK_WORDS)
    body = _Words.of(candidate.body, RANK_WORDS)
    exact = 0
    score = 0.0
    for term in query.terms:
        score += _TITLE_WEIGHT * _saturated(_count(term, title.folded))
        score += _saturated(_count(term, body.folded))
        if term.has_tones and (_count_toned(term, title) or _count_toned(term, body)):
            exact += 1
    return Ranked(candidate.entry_id, exact, round(score, 9))


def _saturated(n: int) -> float:
    return n / (n + 1)


def _count(term: Term, words: list[str]) -> int:
    """Occurrences of ``term`` (folded) in ``words``."""
    return _occurrences(term.folded, term.prefix, words)


def _count_toned(term: Term, words: _Words) -> int:
    return _occurrences(term.toned, term.prefix, words.toned)


def _occurrences(wanted: tuple[str, ...], prefix: bool, words: list[str]) -> int:
    if len(wanted) == 1 and not prefix:
        return words.count(wanted[0])
    first, last = wanted[0], len(wanted) - 1
    found = 0
    for i, word in enumerate(words):
        if (word.startswith(first) if last == 0 and prefix else word == first) and _rest_at(
            wanted, prefix, words, i
        ):
            found += 1
    return found


def _rest_at(wanted: tuple[str, ...], prefix: bool, words: list[str], i: int) -> bool:
    if i + len(wanted) > len(words):
        return False
    last = len(wanted) - 1
    for k in range(1, len(wanted)):
        word = words[i + k]
        if not (word.startswith(wanted[k]) if k == last and prefix else word == wanted[k]):
            return False
    return True
