"""The long-running service: the HTTP server and APScheduler jobs in one event loop.

The poll tick only *claims* due sources; each source's own interval and backoff
(``next_poll_at`` in the database) decide when it is due, so the tick can be
short and several processes can tick against one PostgreSQL without polling a
source twice. After each poll that stored something, the categories it changed
are regenerated once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from feedsvc.config import Config
from feedsvc.ingest.poll import Poller, process_owner
from feedsvc.model import utcnow
from feedsvc.newsletter.deliver import Deliverer, subscriber_links
from feedsvc.newsletter.mail import create_mailer
from feedsvc.newsletter.tokens import Tokens
from feedsvc.publish.regenerate import Publisher
from feedsvc.store import Store
from feedsvc.web.app import create_app

log = logging.getLogger("feedsvc.service")

POLL_TICK_SECONDS = 15
DELIVERY_TICK_SECONDS = 30
MISFIRE_GRACE = 6 * 3600  # a 07:00 digest still goes at 07:03, or after a restart at 09:00


class EmbeddedServer(uvicorn.Server):
    """uvicorn in our event loop; stopping is the service's job, not uvicorn's."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def http_server(config: Config, store: Store, *, embedded: bool = True) -> uvicorn.Server:
    """uvicorn serving the app; ``embedded`` leaves SIGINT/SIGTERM to the caller."""
    settings = uvicorn.Config(
        create_app(config, store),
        host=config.http.host,
        port=config.http.port,
        log_config=None,
        access_log=False,
        lifespan="off",
        server_header=False,
    )
    return EmbeddedServer(settings) if embedded else uvicorn.Server(settings)


class Service:
    """One process of the service: HTTP, polling, publishing, digests, retention.

    Every job's work is claimed in the database, so any number of these
    processes can run against one PostgreSQL (DESIGN.md, invariant 2).
    """

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.publisher = Publisher(config, store)
        self.owner = process_owner()
        self._stop = asyncio.Event()
        self._busy: dict[str, asyncio.Lock] = {}

    async def run(self) -> None:
        """Run until SIGINT or SIGTERM, then let the jobs in flight finish."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._stop.set)
        changed = await asyncio.to_thread(self.publisher.publish_all, utcnow())
        await self.publisher.announce(changed)
        server = http_server(self.config, self.store)
        serving = asyncio.create_task(server.serve())
        mailer = create_mailer(self.config)
        links = subscriber_links(self.config, Tokens.from_config(self.config))
        deliverer = Deliverer(self.config, self.store, mailer, links=links, owner=self.owner)
        async with Poller(self.config, self.store, owner=self.owner) as poller:
            await asyncio.to_thread(poller.sync_sources)
            scheduler = self._scheduler(poller, deliverer)
            scheduler.start()
            log.info("started", extra={"fields": self._summary()})
            await self._once("poll", self._poll, poller)
            for name in self.config.newsletter.schedules:  # a period missed while down
                await self._once(f"digest-{name}", self._digest, deliverer, name)
            await self._stop.wait()
            scheduler.shutdown(wait=False)
            for lock in self._busy.values():  # let the jobs in flight finish
                async with lock:
                    pass
        await mailer.close()
        server.should_exit = True
        await serving
        log.info("stopped")

    def _scheduler(self, poller: Poller, deliverer: Deliverer) -> AsyncIOScheduler:
        """The jobs. Cron jobs may run late (a busy or restarting process) rather than be
        skipped: APScheduler drops a job more than 1 s late unless told otherwise."""
        scheduler = AsyncIOScheduler(timezone=self.config.site.timezone)
        common = {"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE}
        scheduler.add_job(
            self._once,
            "interval",
            args=["poll", self._poll, poller],
            seconds=POLL_TICK_SECONDS,
            id="poll",
            **common,
        )
        scheduler.add_job(
            self._once,
            "interval",
            args=["deliveries", self._deliveries, deliverer],
            seconds=DELIVERY_TICK_SECONDS,
            id="deliveries",
            **common,
        )
        for name, cron in self.config.newsletter.schedules.items():
            trigger = CronTrigger.from_crontab(cron, timezone=self.config.site.timezone)
            scheduler.add_job(
                self._once,
                trigger,
                args=[f"digest-{name}", self._digest, deliverer, name],
                id=f"digest-{name}",
                **common,
            )
        scheduler.add_job(
            self._once,
            "cron",
            args=["retention", self._retention],
            hour=3,
            minute=30,
            id="retention",
            **common,
        )
        return scheduler

    async def _once(self, job: str, work: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run ``work`` unless stopping or the same job is still running; log its failure.

        A failing job must not stop the service: the next tick tries again.
        """
        lock = self._busy.setdefault(job, asyncio.Lock())
        if self._stop.is_set() or lock.locked():
            return
        async with lock:
            try:
                await work(*args)
            except Exception:
                log.exception("job failed", extra={"fields": {"job": job}})

    async def _poll(self, poller: Poller) -> None:
        results = await poller.poll(due_only=True)
        changed = await asyncio.to_thread(self.publisher.after_poll, results, utcnow())
        await self.publisher.announce(changed)

    async def _digest(self, deliverer: Deliverer, schedule: str) -> None:
        await asyncio.to_thread(deliverer.plan, schedule)
        await deliverer.send(schedule)

    async def _deliveries(self, deliverer: Deliverer) -> None:
        """Retries that fell due, and deliveries a dead process left behind."""
        await deliverer.send()

    async def _retention(self) -> None:
        cutoff = utcnow() - timedelta(days=self.config.retention.days)
        purged = await asyncio.to_thread(
            self.store.entries.purge, cutoff, self.config.feeds.max_items
        )
        log.info("retention", extra={"fields": {"purged": purged, "before": cutoff.isoformat()}})

    def _summary(self) -> dict[str, object]:
        return {
            "sources": len(self.config.sources),
            "schedules": " ".join(self.config.newsletter.schedules),
            "http": f"{self.config.http.host}:{self.config.http.port}",
            "owner": self.owner,
        }
