"""``/search`` (the page) and ``/feeds/search.{rss,atom,json}`` (the search as a feed).

A search feed is polled by every reader who saved it, every few minutes, so
its documents are cached in the process per (query, category, format) and
reused while :meth:`SearchIndex.version` (the newest entry, the newest edit,
the last retention run: three indexed reads) is unchanged. The check is against
the database, so a cache is never stale because another process stored
entries. Validators and gzip are the category feeds' (``web.feeds``).
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from feedsvc import search
from feedsvc.publish.items import MEDIA_TYPES, Format, to_uri
from feedsvc.publish.search_feed import feed_info, one_per_story, query_string, render_search
from feedsvc.search.query import MAX_QUERY_CHARS
from feedsvc.store.documents import Document
from feedsvc.web.feeds import document_response

if TYPE_CHECKING:
    from feedsvc.web.app import Site

PAGE_RESULTS = 30
FEED_ITEMS = 50
CACHED_FEEDS = 256
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # an empty search feed's date: the same bytes


@dataclass(frozen=True, slots=True)
class HitView:
    """One result as the page shows it."""

    title: Markup
    url: str
    story_url: str
    source: str
    when: str
    when_iso: str
    snippet: Markup


class _FeedCache:
    """The newest documents of the searches asked for, each with the index version it
    was made at; least recently used go first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._documents: OrderedDict[tuple[str, str, str], tuple[str, Document]] = OrderedDict()

    def get(self, key: tuple[str, str, str], version: str) -> Document | None:
        with self._lock:
            found = self._documents.get(key)
            if found is None or found[0] != version:
                return None
            self._documents.move_to_end(key)
            return found[1]

    def put(self, key: tuple[str, str, str], version: str, document: Document) -> None:
        with self._lock:
            self._documents[key] = (version, document)
            self._documents.move_to_end(key)
            while len(self._documents) > self._size:
                self._documents.popitem(last=False)


class Search:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.cache = _FeedCache(CACHED_FEEDS)
        self.rendered = 0  # search feed documents made (not served from the cache)

    def routes(self) -> list[Route]:
        return [
            Route("/search", self.page, methods=["GET", "HEAD"]),
            Route("/feeds/search.{fmt}", self.feed, methods=["GET", "HEAD"]),
        ]

    async def page(self, request: Request) -> Response:
        params = self._params(request)
        if params is None:
            return self.site.render(request, "web/not_found.html", status=404)
        typed, category = params
        query = search.parse(typed)
        found = await run_in_threadpool(
            self.site.store.search.search, query, category, PAGE_RESULTS * 2
        )
        hits = one_per_story(found, PAGE_RESULTS)  # twins take room: read more than shown
        qs = query_string(query.key, category)
        base = self.site.config.site.base_url.rstrip("/")
        return self.site.render(
            request,
            "web/search.html",
            typed=typed,
            query=query,
            category=category or "",
            categories=self.site.config.categories,
            hits=[self._view(hit) for hit in hits],
            search_feeds={fmt: f"{base}/feeds/search.{fmt}?{qs}" for fmt in self.site.formats},
        )

    async def feed(self, request: Request) -> Response:
        fmt = request.path_params["fmt"]
        params = self._params(request)
        if fmt not in self.site.formats or params is None:
            return self.site.render(request, "web/not_found.html", status=404)
        document = await run_in_threadpool(self._document, fmt, *params)
        return document_response(request, document, self.site.max_age)

    def _params(self, request: Request) -> tuple[str, str | None] | None:
        """What was typed (cut to what a search reads) and the category; None when the
        category does not exist."""
        typed = request.query_params.get("q", "")[: MAX_QUERY_CHARS * 4]
        typed = " ".join(typed.split())[:MAX_QUERY_CHARS]
        category = request.query_params.get("category") or None
        if category is not None and category not in {c.id for c in self.site.config.categories}:
            return None
        return typed, category

    def _document(self, fmt: Format, typed: str, category: str | None) -> Document:
        query = search.parse(typed)
        store = self.site.store
        key = (query.key, category or "", fmt)
        version = store.search.version()
        cached = self.cache.get(key, version)
        if cached is not None:
            return cached
        hits = one_per_story(store.search.search(query, category, FEED_ITEMS * 2), FEED_ITEMS)
        titles = {c.id: c.title for c in self.site.config.categories}
        info = feed_info(
            self.site.config.site,
            query.key,
            titles.get(category or ""),
            query_string(query.key, category),
        )
        body = render_search(fmt, info, [hit.entry for hit in hits], EPOCH)
        newest = max((h.entry.changed or h.entry.first_seen for h in hits), default=EPOCH)
        document = Document(
            f"search.{fmt}",
            f"{MEDIA_TYPES[fmt]}; charset=utf-8",
            body,
            gzip.compress(body, mtime=0),
            '"' + hashlib.sha256(body).hexdigest()[:32] + '"',
            newest.astimezone(UTC).replace(microsecond=0),
        )
        self.rendered += 1
        self.cache.put(key, version, document)
        return document

    def _source_titles(self) -> dict[str, str]:
        """The names config.yaml gives sources (they win over the feed's own title)."""
        return {s.id: s.title for s in self.site.config.sources if s.title}

    def _view(self, hit: search.SearchHit) -> HitView:
        entry = hit.entry
        story = f"{self.site.config.site.base_url.rstrip('/')}/s/{entry.id}"
        return HitView(
            title=Markup(hit.title.html()),  # noqa: S704 - escaped piece by piece
            url=to_uri(entry.link) or story,
            story_url=story,
            source=self._source_titles().get(entry.source_id) or hit.source,
            when=_when(entry.date, self.site.config.site.timezone),
            when_iso=entry.date.isoformat(),
            snippet=Markup(hit.snippet.html()),  # noqa: S704 - escaped piece by piece
        )


def _when(moment: datetime, timezone: str) -> str:
    return str(format_datetime(moment, "HH:mm, d/M/yyyy", tzinfo=ZoneInfo(timezone)))
