"""What a reader typed, as a query both backends run alike; never an error.

Grammar, as readers type it: words (all of them must match), ``"quoted
phrases"`` (the words in that order), and ``giao*`` (words starting so). Anything
else is punctuation: it separates words and does nothing else. So a lone ``"``,
a bare ``*``, ``NEAR(``, ``OR``, ``'; DROP TABLE`` or 10 KB of text give a query
of ordinary words, or an empty one, and the expressions written from it
(:meth:`Query.fts5`, :meth:`Query.tsquery`) quote every word: no input reaches
the engines' own query syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from feedsvc._text import clean_line
from feedsvc.search.fold import words

MAX_QUERY_CHARS = 256
"""Only this much of what was typed is read: more is not a search, it is a paste."""

MAX_TERMS = 8
MAX_PHRASE_WORDS = 8
MIN_PREFIX = 2
"""``g*`` would match most of the index: a shorter stem is searched as a word."""

_PART = re.compile(r'"([^"]*)"?|([^\s"]+)')


@dataclass(frozen=True, slots=True)
class Term:
    """A word, a phrase (several words in order) or a prefix (the last word's start)."""

    toned: tuple[str, ...]  # caseless NFC, as typed
    folded: tuple[str, ...]
    prefix: bool = False

    @property
    def has_tones(self) -> bool:
        """Whether the reader typed marks here: then the same marks rank first."""
        return self.toned != self.folded

    def text(self) -> str:
        joined = " ".join(self.toned)
        if len(self.toned) > 1:
            return f'"{joined}"'
        return joined + ("*" if self.prefix else "")


@dataclass(frozen=True, slots=True)
class Query:
    terms: tuple[Term, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.terms)

    @property
    def key(self) -> str:
        """The query's canonical spelling: the same for every way of typing it."""
        return " ".join(term.text() for term in self.terms)

    def fts5(self) -> str:
        """An SQLite FTS5 MATCH expression: every term, each word quoted."""
        return " AND ".join(
            '"' + " ".join(t.folded) + '"' + ("*" if t.prefix else "") for t in self.terms
        )

    def tsquery(self) -> str:
        """A PostgreSQL ``to_tsquery('simple', …)`` text meaning the same as :meth:`fts5`."""
        return " & ".join(_tsquery_term(term) for term in self.terms)


def parse(typed: str) -> Query:
    """The query in ``typed``; an empty :class:`Query` when nothing searchable is left."""
    text = clean_line(typed[: MAX_QUERY_CHARS * 4])[:MAX_QUERY_CHARS]
    terms: dict[tuple[tuple[str, ...], bool], Term] = {}
    for match in _PART.finditer(text):
        phrase, bare = match.groups()
        term = _term(phrase if phrase is not None else bare, quoted=phrase is not None)
        if term is not None:
            terms.setdefault((term.folded, term.prefix), term)
    return Query(tuple(terms.values())[:MAX_TERMS])


def _term(part: str, *, quoted: bool) -> Term | None:
    found = list(words(part))[:MAX_PHRASE_WORDS]
    if not found:
        return None
    prefix = (
        not quoted
        and part.endswith("*")
        and part.rstrip("*")[-1:].isalnum()  # "giao*", not "giao.*"
        and len(found[-1].folded) >= MIN_PREFIX
    )
    return Term(tuple(w.toned for w in found), tuple(w.folded for w in found), prefix)


def _tsquery_term(term: Term) -> str:
    lexemes = [f"'{word}'" for word in term.folded]
    if term.prefix:
        lexemes[-1] += ":*"
    if len(lexemes) == 1:
        return lexemes[0]
    return "(" + " <-> ".join(lexemes) + ")"
