"""A saved search as a feed: the entries a search found, in RSS, Atom or JSON Feed.

The same writers as the category feeds (``publish.feeds``); only what the feed
says about itself differs: its title names the query, and its self link and
page link carry the query, so a reader's subscription is the search.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlencode

from feedsvc import i18n
from feedsvc.config import Site
from feedsvc.model import Entry
from feedsvc.publish.feeds import render
from feedsvc.publish.items import FeedInfo, Format
from feedsvc.search import SearchHit
from feedsvc.stories.exact import dedupe


@dataclass(frozen=True, slots=True)
class SearchFeedInfo(FeedInfo):
    """A search feed: served at ``/feeds/search.FMT?QUERY``, shown at ``/search?QUERY``."""

    base: str = ""
    query_string: str = ""

    def self_url(self, fmt: Format) -> str:
        return f"{self.base}/feeds/search.{fmt}?{self.query_string}"


def query_string(text: str, category: str | None) -> str:
    """``q=…[&category=…]``, percent-encoded UTF-8 (a valid URI in every format)."""
    params = {"q": text} | ({"category": category} if category else {})
    return urlencode(params, quote_via=quote)


def feed_info(site: Site, text: str, category_title: str | None, qs: str) -> SearchFeedInfo:
    """What the search feed for ``text`` (typed, cleaned) says about itself."""
    base = FeedInfo.for_all(site)
    _ = i18n.translator(site.language)
    title = f"{site.title} — {_('Search')}: {text}" + (
        f" ({category_title})" if category_title else ""
    )
    return SearchFeedInfo(
        id="search",
        title=title,
        description=title,
        site_url=f"{base.site_url.rstrip('/')}/search?{qs}",
        language=base.language,
        tag_authority=base.tag_authority,
        author=base.author,
        base=base.site_url.rstrip("/"),
        query_string=qs,
    )


def render_search(
    fmt: Format, feed: SearchFeedInfo, entries: Sequence[Entry], empty_since: datetime
) -> bytes:
    """The document; an empty search's is dated ``empty_since`` (so its bytes are stable)."""
    return render(fmt, feed, entries, empty_since)


def one_per_story(hits: Sequence[SearchHit], limit: int) -> list[SearchHit]:
    """The best ``limit`` hits, a story that came from several sources once (as in the
    category feeds, ``stories.exact.dedupe``), in rank order."""
    kept = {entry.id for entry in dedupe([hit.entry for hit in hits])}
    return [hit for hit in hits if hit.entry.id in kept][:limit]
