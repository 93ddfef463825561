"""The long-running service: APScheduler jobs that call the stages.

The poll tick only *claims* due sources; each source's own interval and backoff
(``next_poll_at`` in the database) decide when it is due, so the tick can be
short and several processes can tick against one PostgreSQL without polling a
source twice.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from feedsvc.config import Config
from feedsvc.ingest.poll import Poller
from feedsvc.store import Store

log = logging.getLogger("feedsvc.service")

POLL_TICK_SECONDS = 15


class Service:
    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self._stop = asyncio.Event()
        self._poll_lock = asyncio.Lock()

    async def run(self) -> None:
        """Run until SIGINT or SIGTERM, then let in-flight polls finish."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._stop.set)
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
            log.info("started", extra={"fields": {"sources": len(self.config.sources)}})
            await self._tick(poller)
            await self._stop.wait()
            scheduler.shutdown(wait=False)
            async with self._poll_lock:  # wait for a poll in flight
                pass
        log.info("stopped")

    async def _tick(self, poller: Poller) -> None:
        if self._stop.is_set() or self._poll_lock.locked():
            return
        async with self._poll_lock:
            await poller.poll(due_only=True)
