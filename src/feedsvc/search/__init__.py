"""Tone-blind search, the pure part: folding, the query language, ranking, snippets.

``store.search`` finds candidates with SQLite FTS5 or PostgreSQL full text over
the folded words this package makes; the web page, the search feeds and the
``feedsvc search`` command show what :func:`rank` and :func:`highlight` make of them.
"""

from feedsvc.search.fold import entry_body, fold, index_text, index_words, plain_text
from feedsvc.search.hit import SearchHit
from feedsvc.search.query import Query, Term, parse
from feedsvc.search.rank import CANDIDATES, RANK_WORDS, Candidate, Ranked, needs_text, rank
from feedsvc.search.snippet import Snippet, highlight

__all__ = [
    "CANDIDATES",
    "RANK_WORDS",
    "Candidate",
    "Query",
    "Ranked",
    "SearchHit",
    "Snippet",
    "Term",
    "entry_body",
    "fold",
    "highlight",
    "index_text",
    "index_words",
    "needs_text",
    "parse",
    "plain_text",
    "rank",
]
