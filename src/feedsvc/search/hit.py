"""A search result as every shell shows it."""

from __future__ import annotations

from dataclasses import dataclass

from feedsvc.model import Entry
from feedsvc.search.fold import entry_body
from feedsvc.search.query import Query
from feedsvc.search.rank import Ranked
from feedsvc.search.snippet import Snippet, highlight


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One entry found: the entry, its source's name, and its marked title and snippet."""

    entry: Entry
    source: str  # the source's title, else its id
    title: Snippet
    snippet: Snippet
    exact: int  # the query's toned terms it has with the same tones
    score: float


def make_hit(query: Query, entry: Entry, source: str, ranked: Ranked) -> SearchHit:
    return SearchHit(
        entry=entry,
        source=source,
        title=highlight(entry.title, query, window=False),
        snippet=highlight(entry_body(entry.summary, entry.content), query),
        exact=ranked.exact,
        score=ranked.score,
    )
