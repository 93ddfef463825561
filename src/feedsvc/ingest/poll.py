"""Polling: claim sources, then fetch -> parse -> store each one.

``Poller.poll_source`` is the whole pipeline for one source and reads as its
steps. Parsing runs in a process pool (``ingest.pool``) so that both cores work while
the event loop keeps fetching; the store runs in a thread so a write never stalls the
fetches in flight. One source's failure is a ``PollResult`` value, never an
exception that stops the others.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from datetime import datetime
from types import TracebackType

from feedsvc import lease, metrics
from feedsvc.config import Config, SourceConfig
from feedsvc.errors import FeedsvcError, Gone
from feedsvc.ingest import outcome
from feedsvc.ingest.fetch import Fetcher, FetchPolicy
from feedsvc.ingest.fulltext import Extractor, wants_article
from feedsvc.ingest.parse import parse_feed
from feedsvc.ingest.pool import parse_pool
from feedsvc.lease import Heartbeat, Holder, process_owner
from feedsvc.model import FetchResult, PollResult, Source, utcnow
from feedsvc.store import Store

log = logging.getLogger("feedsvc.poll")

Clock = Callable[[], datetime]


def fetch_policy(config: Config) -> FetchPolicy:
    return FetchPolicy(
        user_agent=config.user_agent,
        timeout=config.fetch.timeout.total_seconds(),
        max_bytes=config.fetch.max_bytes,
        allow_private_networks=config.fetch.allow_private_networks,
    )


class Poller:
    """Polls sources for one process; an async context manager owning its HTTP session."""

    parse_changed_items = True  # False parses every item of every new document (bench)

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        pool: Executor | None = None,
        clock: Clock = utcnow,
        owner: str | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.owner = owner or process_owner()
        self._pool = pool
        self._own_pool = pool is None
        self._fetcher = Fetcher(fetch_policy(config), concurrency=config.fetch.concurrency)
        self._articles = Extractor(
            store, self._fetcher, concurrency=config.fetch.concurrency, clock=clock
        )
        # Every poll looks its source's settings up: a scan of 2,000 cost a fifth of a 304.
        self._settings = {source.id: source for source in config.sources}
        self._unchanged: list[tuple[str, dict[str, object]]] = []

    async def __aenter__(self) -> Poller:
        await self._fetcher.__aenter__()
        if self._pool is None:
            self._pool = parse_pool()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._fetcher.__aexit__(exc_type, exc, tb)
        if self._own_pool and self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def sync_sources(self) -> None:
        """Bring the sources table in line with config.yaml."""
        pairs = [(source.id, source.url) for source in self.config.sources]
        self.store.sources.sync(pairs, self.clock())

    async def poll(
        self,
        ids: Sequence[str] | None = None,
        *,
        due_only: bool = False,
        force: bool = False,
        wait_for_leases: bool = False,
        on_claimed: Callable[[int], None] | None = None,
        on_result: Callable[[PollResult], None] | None = None,
    ) -> list[PollResult]:
        """Claim the sources to poll (all, or ``ids``) and poll them concurrently.

        Leases of dead processes of this host are taken over at once; those of
        live or remote ones are left (:meth:`held` says whose they are), or with
        ``wait_for_leases`` waited for until they expire, and then polled.
        """
        results = await self._poll_claimed(ids, due_only, force, on_claimed, on_result)
        while wait_for_leases and (held := await asyncio.to_thread(self.held)):
            until = max(holder.until for holder in held)
            await asyncio.sleep(max(0.0, (until - self.clock()).total_seconds()) + 0.05)
            wanted = ids if ids is not None else [source.id for source in self.config.sources]
            polled = {result.source_id for result in results}
            rest = [source_id for source_id in wanted if source_id not in polled]
            if not rest:
                break
            results += await self._poll_claimed(rest, due_only, force, on_claimed, on_result)
        return results

    async def _poll_claimed(
        self,
        ids: Sequence[str] | None,
        due_only: bool,
        force: bool,
        on_claimed: Callable[[int], None] | None,
        on_result: Callable[[PollResult], None] | None,
    ) -> list[PollResult]:
        claimed = await asyncio.to_thread(self._claim, ids, due_only, force)
        claimed = await self._known(claimed)
        if on_claimed:
            on_claimed(len(claimed))
        # At most `concurrency` sources between fetch and store: a body waiting for a
        # parse worker is held in memory, and fetching outruns parsing.
        slots = asyncio.Semaphore(self.config.fetch.concurrency)
        beat = Heartbeat([s.id for s in claimed], self._renew, self.config.fetch.lease / 3)
        results: dict[str, PollResult] = {}
        articles: list[asyncio.Task[None]] = []

        async def finish(result: PollResult) -> None:
            result = await self._full_text(result)
            if on_result:
                on_result(result)
            results[result.source_id] = result

        async def lane(queue: deque[Source]) -> None:
            while queue:
                source = queue.popleft()
                async with slots:
                    result = await self.poll_source(source)
                beat.done(source.id)
                if self._settings[source.id].full_text is None:
                    await finish(result)
                else:  # article pages may take a while: the lane goes on to its next source
                    articles.append(asyncio.create_task(finish(result)))

        try:
            async with beat:
                await asyncio.gather(*(lane(queue) for queue in self._lanes(claimed)))
                await asyncio.gather(*articles)
            return [results[source.id] for source in claimed]
        finally:
            await self._flush_unchanged()

    def _lanes(self, claimed: list[Source]) -> list[deque[Source]]:
        """The claimed sources as lanes that each poll one at a time: a host's sources
        in one queue, shared by as many lanes as the host may take fetches at once.

        One task per source, all waiting on the per-host limit, cost a wake-up per
        fetch: with a newsroom's sources on one site, that was most of the poll's CPU.
        The fetcher still enforces the limit (its article pages share it).
        """
        hosts: dict[str, deque[Source]] = {}
        for source in claimed:
            hosts.setdefault(self._fetcher.host_of(source.url), deque()).append(source)
        per_host = self._fetcher.per_host
        return [queue for queue in hosts.values() for _ in range(min(per_host, len(queue)))]

    async def _full_text(self, result: PollResult) -> PollResult:
        """Fetch the article pages of the source's entries marked "to fetch" (a full_text
        source), now that its feed is stored and its slot and heartbeat are given back:
        pages can take a while, and need neither."""
        full_text = self._settings[result.source_id].full_text
        if full_text is None or result.error is not None:
            return result
        return await self._articles.complete(result, full_text, self._pool)

    def _claim(self, ids: Sequence[str] | None, due_only: bool, force: bool) -> list[Source]:
        now = self.clock()
        holders = [h for h in self.store.sources.holders(now) if h.owner != self.owner]
        dead = lease.dead_owners(holders)
        if dead:
            log.warning("taking over", extra={"fields": {"dead": " ".join(dead)}})
        return self.store.sources.claim(
            self.owner,
            now,
            self.config.fetch.lease,
            ids=ids,
            due_only=due_only,
            force=force,
            take_over=dead,
        )

    def held(self) -> list[Holder]:
        """Leases on sources that live or remote processes hold now (dead ones' are taken
        over by the next claim)."""
        return lease.live_holders(self.store.sources.holders(self.clock()), self.owner)

    async def _renew(self, ids: list[str]) -> list[str]:
        until = self.clock() + self.config.fetch.lease
        return await asyncio.to_thread(self.store.sources.renew, self.owner, ids, until)

    async def _known(self, claimed: list[Source]) -> list[Source]:
        """The claimed sources this process's config.yaml has; the others are released.

        Processes sharing a database may briefly run different config.yaml files
        (a rollout): a source only another process knows is left to that one.
        """
        unknown = [source.id for source in claimed if source.id not in self._settings]
        if not unknown:
            return claimed
        for source_id in unknown:
            log.warning(
                "not in this config.yaml; left to another process",
                extra={"fields": {"source": source_id}},
            )
        await asyncio.to_thread(
            self.store.sources.record_many, [(i, {}) for i in unknown], self.owner
        )
        return [source for source in claimed if source.id in self._settings]

    async def _flush_unchanged(self) -> None:
        """Record every 304/same-body outcome of the poll in one transaction.

        Most polls of most sources change nothing; writing those rows one
        transaction each cost more than the requests themselves.
        """
        unchanged, self._unchanged = self._unchanged, []
        if unchanged:
            await asyncio.to_thread(self.store.sources.record_many, unchanged, self.owner)

    async def poll_source(self, source: Source) -> PollResult:
        """Fetch, parse and store one claimed source; failures become the result's error."""
        settings = self._settings[source.id]
        now = self.clock()
        try:
            with metrics.FETCH_SECONDS.time():
                fetched = await self._fetcher.fetch(
                    source.url, etag=source.etag, last_modified=source.last_modified, now=now
                )
            result = await self._store(source, settings, fetched, now)
        except FeedsvcError as error:
            result = await self._fail(source, settings, error, now)
        except Exception as error:  # a bug must cost one source, not the whole poll
            log.exception("poll failed", extra={"fields": {"source": source.id}})
            internal = FeedsvcError(f"internal error: {type(error).__name__}: {error}")
            result = await self._fail(source, settings, internal, now)
        _log(result)
        metrics.count_poll(result)
        return result

    async def _store(
        self, source: Source, settings: SourceConfig, fetched: FetchResult, now: datetime
    ) -> PollResult:
        interval = self.config.source_interval(settings)
        body_hash = hashlib.sha256(fetched.body).hexdigest() if fetched.body is not None else None
        if fetched.not_modified or body_hash == source.body_hash:
            status = "not_modified" if fetched.not_modified else "same_body"
            values = outcome.succeeded(
                source, fetched, None, body_hash=body_hash, interval=interval, now=now
            )
            self._unchanged.append((source.id, values))
            return PollResult(source.id, status)
        assert fetched.body is not None
        loop = asyncio.get_running_loop()
        # The items already stored are not parsed again: most feeds send all of them
        # again for one new item (the benchmark switches this off to compare).
        known = None
        if self.parse_changed_items:
            known = await asyncio.to_thread(self.store.entries.item_keys, source.id)
        # A partial of parse_feed itself, not a function of this module: unpickling
        # that would import the whole poller (SQLAlchemy, aiohttp…) into every
        # worker, 48 MB each against the 26 MB parse needs.
        parse = functools.partial(
            parse_feed,
            fetched.body,
            url=fetched.url,
            headers=dict(fetched.headers),
            timezone=self.config.source_timezone(settings),
            now=now,
            max_entries=self.config.fetch.max_entries,
            known=known,
        )
        feed = await loop.run_in_executor(self._pool, parse)
        values = outcome.succeeded(
            source, fetched, feed, body_hash=body_hash, interval=interval, now=now
        )
        stored = await asyncio.to_thread(
            self.store.entries.apply,
            source,
            feed,
            values,
            now,
            self.owner,
            wants_article=wants_article if settings.full_text is not None else None,
            stored_items=known,
        )
        return PollResult(
            source.id,
            "updated" if stored.new or stored.updated else "no_change",
            new=stored.new,
            updated=stored.updated,
            warning=feed.warning,
            entry_ids=stored.new_ids + stored.updated_ids,
            backlog=stored.backlog,
        )

    async def _fail(
        self, source: Source, settings: SourceConfig, error: FeedsvcError, now: datetime
    ) -> PollResult:
        values = outcome.failed(
            source,
            error,
            interval=self.config.source_interval(settings),
            max_backoff=self.config.fetch.max_backoff,
            now=now,
        )
        await asyncio.to_thread(self.store.sources.record, source.id, values, self.owner)
        status = "retired" if isinstance(error, Gone) else "error"
        return PollResult(source.id, status, error=values["last_error"])


def _log(result: PollResult) -> None:
    fields: dict[str, object] = {"source": result.source_id, "status": result.status}
    if result.status == "updated":
        fields |= {"new": result.new, "updated": result.updated}
    if result.error:
        fields["error"] = result.error
    if result.warning:
        fields["warning"] = result.warning
    level = logging.WARNING if result.error else logging.INFO
    log.log(level, "polled", extra={"fields": fields})
