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
from collections.abc import Iterator

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from feedsvc.config import Config
from feedsvc.ingest.poll import Poller
from feedsvc.model import utcnow
from feedsvc.publish.regenerate import Publisher
from feedsvc.store import Store
from feedsvc.web.app import create_app

log = logging.getLogger("feedsvc.service")

POLL_TICK_SECONDS = 15


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
    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.publisher = Publisher(config, store)
        self._stop = asyncio.Event()
        self._poll_lock = asyncio.Lock()

    async def run(self) -> None:
        """Run until SIGINT or SIGTERM, then let an in-flight poll finish."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._stop.set)
        changed = await asyncio.to_thread(self.publisher.publish_all, utcnow())
        await self.publisher.announce(changed)
        server = http_server(self.config, self.store)
        serving = asyncio.create_task(server.serve())
        async with Poller(self.config, self.store) as poller:
            await asyncio.to_thread(poller.sync_sources)
            scheduler = AsyncIOScheduler(timezone=self.config.site.timezone)
            scheduler.add_job(
                self._tick,
                "interval",
                args=[poller],
                seconds=POLL_TICK_SECONDS,
                id="poll-tick",
                coalesce=True,
                max_instances=1,
            )
            scheduler.start()
            log.info(
                "started",
                extra={
                    "fields": {
                        "sources": len(self.config.sources),
                        "http": f"{self.config.http.host}:{self.config.http.port}",
                    }
                },
            )
            await self._tick(poller)
            await self._stop.wait()
            scheduler.shutdown(wait=False)
            async with self._poll_lock:  # wait for a poll in flight
                pass
        server.should_exit = True
        await serving
        log.info("stopped")

    async def _tick(self, poller: Poller) -> None:
        if self._stop.is_set() or self._poll_lock.locked():
            return
        async with self._poll_lock:
            results = await poller.poll(due_only=True)
            changed = await asyncio.to_thread(self.publisher.after_poll, results, utcnow())
            await self.publisher.announce(changed)
