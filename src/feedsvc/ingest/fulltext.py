"""Full text for sources whose feed gives only a lead (``full_text`` in config.yaml).

Two steps, so that nothing is lost to a kill between them:

1. when a poll stores a source's entries, :func:`wants_article` picks the new
   ones whose feed content is only a lead, and the store marks them "to fetch"
   (``entries.full_text_due``) in the feed's own transaction;
2. after that transaction, :meth:`Extractor.complete` fetches the pages of the
   source's marked entries (this poll's, and any a killed process left), finds
   each article (``ingest.article``, in the parse pool) and stores it as the
   entry's content, or records why the lead stays.

Pages go through the poller's own `Fetcher`: the same address checks on every
hop, ``max_bytes``, deadline and User-Agent as feeds, and the same slots, so
feeds and pages together stay within ``fetch.concurrency`` and the per-host
limit. A page is fetched once: no validators are kept, and a fetched or failed
entry is not marked again unless an edit in the feed changes its link. A page
that fails is a value in the poll's result, never the poll's failure.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from datetime import datetime

from feedsvc.config import FullText
from feedsvc.errors import FeedsvcError
from feedsvc.ingest._html import html_to_text
from feedsvc.ingest.article import Extracted, extract
from feedsvc.ingest.fetch import Fetcher
from feedsvc.model import Article, ArticleDue, ParsedEntry, PollResult
from feedsvc.store import Store

log = logging.getLogger("feedsvc.fulltext")

LEAD_CHARS = 1000
"""Feed content with no more text than this (or than the summary) is a lead, not the
article: a Vietnamese news story runs 3,000-10,000 characters, its lead 150-500."""

PER_POLL = 50
"""Pages fetched for one source per poll at most; the rest stay marked for the next
polls, so a new source's first poll does not send hundreds of requests to one site."""

_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"


def wants_article(entry: ParsedEntry) -> bool:
    """Whether ``entry``'s page is worth fetching: it has a link, and its feed content
    is only a lead (none, or text no longer than its summary or than `LEAD_CHARS`)."""
    if not entry.link:
        return False
    chars = len(html_to_text(entry.content)) if entry.content else 0
    return chars <= max(len(entry.summary), LEAD_CHARS)


class Extractor:
    """Fetches and extracts the pages of marked entries, for one process's poller."""

    def __init__(
        self,
        store: Store,
        fetcher: Fetcher,
        *,
        concurrency: int,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._fetcher = fetcher
        self._clock = clock
        # Pages between fetch and store, across sources: each holds its body in memory.
        self._slots = asyncio.Semaphore(concurrency)

    async def complete(
        self, result: PollResult, full_text: FullText, pool: Executor | None
    ) -> PollResult:
        """Fetch the pages of the source's marked entries; ``result`` with their counts.

        Entries whose content became their article are added to ``entry_ids``,
        so the feeds they are in are rendered again. The feed's poll has been
        stored already: whatever happens here, it stands, and the marks stay for
        the next poll.
        """
        try:
            return await self._complete(result, full_text, pool)
        except Exception:
            log.exception("articles failed", extra={"fields": {"source": result.source_id}})
            return result

    async def _complete(
        self, result: PollResult, full_text: FullText, pool: Executor | None
    ) -> PollResult:
        due = await asyncio.to_thread(self._store.entries.articles_due, result.source_id, PER_POLL)
        if not due:
            return result
        articles = await asyncio.gather(
            *(self._article(result.source_id, item, full_text.selector, pool) for item in due)
        )
        now = self._clock()
        stored = await asyncio.to_thread(self._store.entries.record_articles, articles, now)
        result = _counted(result, articles, stored)
        fields = {"source": result.source_id, "stored": result.articles}
        log.info("articles", extra={"fields": fields | {"failed": result.article_failures}})
        return result

    async def _article(
        self, source_id: str, due: ArticleDue, selector: str | None, pool: Executor | None
    ) -> Article:
        async with self._slots:
            extracted = await self._extract(due, selector, pool)
        fields = {"source": source_id, "entry": due.entry_id, "url": due.link}
        if extracted.error:
            log.warning("article not used", extra={"fields": fields | {"error": extracted.error}})
        else:
            log.info("article", extra={"fields": fields})
        return Article(due.entry_id, due.link, extracted.content, extracted.error)

    async def _extract(
        self, due: ArticleDue, selector: str | None, pool: Executor | None
    ) -> Extracted:
        """Fetch the page and find its article; every failure is a value."""
        try:
            page = await self._fetcher.fetch(due.link, now=self._clock(), accept=_ACCEPT)
            find = functools.partial(
                extract,
                page.body or b"",
                url=page.url,
                content_type=page.headers.get("Content-Type"),
                selector=selector,
                feed_content=due.content,
            )
            return await asyncio.get_running_loop().run_in_executor(pool, find)
        except FeedsvcError as error:
            return Extracted.failed(str(error))
        except Exception as error:  # a bug must cost one article, not the poll
            log.exception("article failed", extra={"fields": {"entry": due.entry_id}})
            return Extracted.failed(f"internal error: {type(error).__name__}: {error}")


def _counted(result: PollResult, articles: Sequence[Article], stored: Sequence[int]) -> PollResult:
    """``result`` with the pages' outcome: counts, a warning line, the changed entries."""
    failed = [article for article in articles if article.content is None]
    warning = result.warning
    if failed:
        note = f"{len(failed)} of {len(articles)} article pages not used ({failed[0].error})"
        warning = f"{warning}; {note}" if warning else note
    return dataclasses.replace(
        result,
        articles=len(stored),
        article_failures=len(failed),
        warning=warning,
        entry_ids=tuple(dict.fromkeys((*result.entry_ids, *stored))),
    )
