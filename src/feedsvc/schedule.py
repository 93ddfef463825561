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
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from starlette.applications import Starlette

from feedsvc import config as config_module
from feedsvc import metrics, preflight
from feedsvc.config import Config
from feedsvc.errors import ConfigError, FeedsvcError
from feedsvc.ingest.poll import Poller
from feedsvc.lease import process_owner
from feedsvc.model import utcnow
from feedsvc.newsletter import confirmations
from feedsvc.newsletter.alerts import Alerter
from feedsvc.newsletter.compose import subscriber_links
from feedsvc.newsletter.deliver import Deliverer
from feedsvc.newsletter.mail import create_mailer
from feedsvc.newsletter.reports import read_mailbox
from feedsvc.newsletter.tokens import Tokens
from feedsvc.publish.regenerate import Publisher
from feedsvc.retention import retain
from feedsvc.store import Store
from feedsvc.web.app import Site, create_app
from feedsvc.web.date_header import DateHeader
from feedsvc.web.protocol import Deadlines, protocol_class

log = logging.getLogger("feedsvc.service")

POLL_TICK_SECONDS = 15
DELIVERY_TICK_SECONDS = 30
ALERTS_TICK_SECONDS = 60  # incidents are also evaluated after every poll that polled
RELOAD_CHECK_SECONDS = 2
RELOAD_SETTLE_SECONDS = 1  # a changed config.yaml is applied once unchanged this long
MISFIRE_GRACE = 6 * 3600  # a 07:00 digest still goes at 07:03, or after a restart at 09:00
STOP_GRACE = 20  # seconds to finish in-flight work after SIGTERM
SERVER_KEYS = (  # http keys the running server was built with: a reload cannot change them
    "host",
    "port",
    "header_timeout",
    "body_timeout",
    "keep_alive_timeout",
    "max_connections",
    "trusted_proxies",
)


class EmbeddedServer(uvicorn.Server):
    """uvicorn in our event loop; stopping is the service's job, not uvicorn's.

    uvicorn's own main loop wakes ten times a second, to see whether it should
    exit and to refresh the Date header; that was most of an idle service's CPU.
    This one sleeps until ``should_exit`` is set, and :class:`DateHeader` dates
    each response instead.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        self._exit = asyncio.Event()
        super().__init__(config)

    @property
    def should_exit(self) -> bool:
        return self._exit.is_set()

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        if value:
            self._exit.set()
        else:
            self._exit.clear()

    async def main_loop(self) -> None:
        await self.on_tick(0)  # sets the default headers once
        await self._exit.wait()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def http_server(
    config: Config, store: Store, *, embedded: bool = True, app: Starlette | None = None
) -> uvicorn.Server:
    """uvicorn serving the app; ``embedded`` leaves SIGINT/SIGTERM to the caller.

    Both ways it has the read deadlines and connection limit of ``http``
    (``web/protocol.py``), and believes X-Forwarded-For only from
    ``http.trusted_proxies``: uvicorn's default trusts 127.0.0.1, so any local
    proxy passing the header through would choose the client's address.
    """
    app = app or create_app(config, store)
    http = config.http
    deadlines = Deadlines(http.header_timeout.total_seconds(), http.body_timeout.total_seconds())
    settings = uvicorn.Config(
        DateHeader(app) if embedded else app,
        host=http.host,
        port=http.port,
        http=protocol_class(deadlines),
        timeout_keep_alive=http.keep_alive_timeout.total_seconds(),  # type: ignore[arg-type]
        limit_concurrency=http.max_connections + 1,  # uvicorn counts the new one as well
        proxy_headers=bool(http.trusted_proxies),
        forwarded_allow_ips=list(http.trusted_proxies),
        log_config=None,
        access_log=False,
        lifespan="off",
        server_header=False,
        date_header=not embedded,
    )
    return EmbeddedServer(settings) if embedded else uvicorn.Server(settings)


class Service:
    """One process of the service: HTTP, polling, publishing, digests, retention.

    Every job's work is claimed in the database, so any number of these
    processes can run against one PostgreSQL (DESIGN.md, invariant 2). The jobs
    read the current parts (``self.poller``, ``self.deliverer``…) when they run,
    so a reload of config.yaml swaps the parts and the jobs follow.
    """

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self.owner = process_owner()
        self.publisher = Publisher(config, store)
        self._stop = asyncio.Event()
        self._busy: dict[str, asyncio.Lock] = {}
        self._stamp = _stamp(config.path)
        self._pending: _Snapshot | None = None  # a change seen once, not yet steady
        self._tasks: set[asyncio.Future[None]] = set()

    async def run(self) -> None:
        """Run until SIGINT or SIGTERM, then let the jobs in flight finish.

        The HTTP port is bound first: when it cannot be, nothing has started and
        the ``ConfigError`` says why in one line. ``started`` is logged once the
        server listens.

        Raises:
            ConfigError: ``http.host``:``http.port`` cannot be bound.
        """
        sockets = preflight.listen(self.config)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self._reload(forced=True)))
        changed = await asyncio.to_thread(self.publisher.publish_all, utcnow())
        await self.publisher.announce(changed)
        app = create_app(self.config, self.store)
        self.site: Site = app.state.site
        server = http_server(self.config, self.store, app=app)
        serving = await _serving(server, sockets)
        self.mailer = create_mailer(self.config)
        self.deliverer = self._deliverer(self.config)
        self.alerter = Alerter(self.config, self.store, self.mailer, owner=self.owner)
        self.poller = await self._start_poller(self.config)
        self.scheduler = AsyncIOScheduler(timezone=self.config.site.timezone)
        self._add_jobs()
        self.scheduler.start()
        metrics.scheduler_started()
        watcher = asyncio.create_task(self._watch_config())
        log.info("started", extra={"fields": self._summary()})
        await self._once("poll", self._poll)
        await self._catch_up()
        await self._stop.wait()
        watcher.cancel()
        await self._drain()
        await self.poller.__aexit__(None, None, None)
        await self.mailer.close()
        server.should_exit = True
        await serving
        log.info("stopped")

    async def _drain(self) -> None:
        """Stop claiming work and let what is in flight finish, within STOP_GRACE.

        What does not finish in time keeps its lease in the database and is taken
        over when the lease expires: by another process, or this one restarted.
        """
        self.scheduler.pause()
        self.deliverer.stopping = True  # ends its send loop after the current batch

        async def jobs_done() -> None:
            for lock in list(self._busy.values()):
                async with lock:
                    pass

        try:
            await asyncio.wait_for(jobs_done(), STOP_GRACE)
        except TimeoutError:
            log.warning("stopping before jobs in flight finished; their leases will expire")
        self.scheduler.shutdown(wait=False)
        metrics.scheduler_stopped()

    async def _start_poller(self, config: Config) -> Poller:
        poller = Poller(config, self.store, owner=self.owner)
        await poller.__aenter__()
        await asyncio.to_thread(poller.sync_sources)
        return poller

    def _deliverer(self, config: Config) -> Deliverer:
        links = subscriber_links(config, Tokens.from_config(config))
        return Deliverer(config, self.store, self.mailer, links=links, owner=self.owner)

    async def _catch_up(self) -> None:
        """Plan and send each schedule's latest period: one missed while the service
        was down goes out now, once (its delivery rows are unique)."""
        for name in self.config.newsletter.schedules:
            await self._once(f"digest-{name}", self._digest, name)

    def _add_jobs(self) -> None:
        """The jobs. Cron jobs may run late (a busy or restarting process) rather than be
        skipped: APScheduler drops a job more than 1 s late unless told otherwise."""
        add = self.scheduler.add_job
        common = {
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": MISFIRE_GRACE,
            "replace_existing": True,
        }
        add(
            self._once,
            "interval",
            args=["poll", self._poll],
            seconds=POLL_TICK_SECONDS,
            id="poll",
            **common,
        )
        add(
            self._once,
            "interval",
            args=["deliveries", self._deliveries],
            seconds=DELIVERY_TICK_SECONDS,
            id="deliveries",
            **common,
        )
        add(
            self._once,
            "interval",
            args=["confirmations", self._confirmations],
            seconds=DELIVERY_TICK_SECONDS,
            id="confirmations",
            **common,
        )
        add(
            self._once,
            "cron",
            args=["retention", self._retention],
            hour=3,
            minute=30,
            id="retention",
            **common,
        )
        add(self._once, "interval", args=["alerts", self._alerts], seconds=ALERTS_TICK_SECONDS,
            id="alerts", **common)  # fmt: skip
        if self.config.mail.bounces is not None:
            every = self.config.mail.bounces.every.total_seconds()
            add(self._once, "interval", args=["bounces", self._bounces], seconds=every,
                id="bounces", **common)  # fmt: skip
        for name, spec in self.config.newsletter.schedules.items():
            trigger = CronTrigger.from_crontab(spec.cron, timezone=self.config.site.timezone)
            add(
                self._once,
                trigger,
                args=[f"digest-{name}", self._digest, name],
                id=f"digest-{name}",
                **common,
            )

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

    async def _poll(self) -> None:
        results = await self.poller.poll(due_only=True)
        failed = any(result.error is not None for result in results)
        if results and self.alerter.needs_check(failed):  # a failure or a recovery: now
            self._spawn(self._once("alerts", self._alerts))
        if any(result.entry_ids for result in results):  # most ticks store nothing
            changed = await asyncio.to_thread(self.publisher.after_poll, results, utcnow())
            await self.publisher.announce(changed)

    async def _digest(self, schedule: str) -> None:
        if schedule not in self.config.newsletter.schedules:
            return  # removed by a reload since the job was queued
        await asyncio.to_thread(self.deliverer.plan, schedule)
        await self.deliverer.send(schedule)

    async def _deliveries(self) -> None:
        """Retries that fell due, and deliveries a dead process left behind."""
        await self.deliverer.send()

    async def _confirmations(self) -> None:
        """Confirmation emails left by a dead process or queued by another one."""
        tokens = Tokens.from_config(self.config)
        await confirmations.run_queue(self.config, self.store, self.mailer, tokens, self.owner)

    async def _alerts(self) -> None:
        await self.alerter.evaluate()

    async def _bounces(self) -> None:
        """Reports that came back to ``mail.bounces.mailbox`` since the last visit."""
        if self.config.mail.bounces is None:
            return  # removed by a reload
        try:
            await asyncio.to_thread(read_mailbox, self.config, self.store)
        except FeedsvcError as exc:  # an unreachable mailbox is the operator's, not a bug
            log.error("bounce mailbox", extra={"fields": {"error": str(exc)}})

    async def _retention(self) -> None:
        done = await asyncio.to_thread(retain, self.config, self.store, utcnow())
        fields = {
            "purged": done.entries,
            "fragments_pruned": done.fragments,
            "editions_purged": done.editions,
            "before": done.before.isoformat(),
        }
        log.info("retention", extra={"fields": fields})

    async def _watch_config(self) -> None:
        """Reload config.yaml when it changes: a stat every ``RELOAD_CHECK_SECONDS``, and
        every ``RELOAD_SETTLE_SECONDS`` while a change settles.

        A plain task rather than a scheduler job: the job's bookkeeping cost far
        more than the stat, every two seconds for the life of the service.
        """
        while not self._stop.is_set():
            pending = self._pending is not None
            await asyncio.sleep(RELOAD_SETTLE_SECONDS if pending else RELOAD_CHECK_SECONDS)
            try:
                await self._reload()
            except Exception:  # the next change must still be seen
                log.exception("config reload failed")

    async def _reload(self, forced: bool = False) -> None:
        """Apply config.yaml once a change has settled and the result is valid; otherwise
        keep running as is.

        An editor, ``scp`` or a configuration tool may write the file in pieces,
        and each piece is a truncated config. So a change is applied only when two
        looks ``RELOAD_SETTLE_SECONDS`` apart saw the same file (modification time,
        size, inode and bytes), and what is applied is the bytes of those looks.
        SIGHUP (``forced``) applies at once: the operator says the save is done.
        """
        if self._stop.is_set() or (_stamp(self.config.path) == self._stamp and not forced):
            self._pending = None
            return
        seen = await asyncio.to_thread(_Snapshot.of, self.config.path)
        if seen != self._pending and not forced:
            self._pending = seen  # changed since the last look: a save may be under way
            return
        self._pending = None
        self._stamp = seen.stamp
        try:
            config = await asyncio.to_thread(self._candidate, seen)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("config rejected", extra={"fields": {"problem": problem}})
            log.error("config rejected: still running the previous configuration")
            return
        async with self._busy.setdefault("poll", asyncio.Lock()):
            await self._apply(config)

    def _candidate(self, seen: _Snapshot) -> Config:
        """config.yaml as a reload would run it, refused (``ConfigError``) as ``run`` would
        refuse it, or when it drops every source without saying so.

        A file cut short before its ``sources:`` is valid and has no sources; a
        reload would deactivate every one. Only an explicit ``sources: []`` means
        "no sources".
        """
        path = self.config.path
        config = (
            config_module.load(path)  # says why it cannot be read
            if seen.data is None
            else config_module.parse_bytes(seen.data, path)
        )
        if self.config.sources and not config.sources and not config.declares("sources"):
            raise ConfigError(
                [f"{config.where()}: it removes every source; write `sources: []` to mean that"]
            )
        for warning in preflight.require(config):
            log.warning("config warning", extra={"fields": {"problem": warning.text}})
        return config

    async def _apply(self, config: Config) -> None:
        """Swap every part to ``config`` at once, between two polls."""
        old = self.config
        restart = [
            key for key in SERVER_KEYS if getattr(config.http, key) != getattr(old.http, key)
        ]
        if restart:
            fields = {"keys": " ".join(f"http.{key}" for key in restart)}
            log.warning("config: changes need a restart to apply", extra={"fields": fields})
        if config.mail != old.mail:
            mailer, self.mailer = self.mailer, create_mailer(config)
            await mailer.close()
        poller = await self._start_poller(config)
        await self.poller.__aexit__(None, None, None)
        self.poller = poller
        self.config = config
        self.deliverer = self._deliverer(config)
        self.alerter = Alerter(config, self.store, self.mailer, owner=self.owner)
        self.publisher = Publisher(config, self.store)
        self.site.use(config)
        for job in self.scheduler.get_jobs():
            if job.id.startswith("digest-"):
                job.remove()
        self._add_jobs()
        changed = await asyncio.to_thread(self.publisher.publish_all, utcnow())
        await self.publisher.announce(changed)
        log.info("config reloaded", extra={"fields": self._summary()})

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _summary(self) -> dict[str, object]:
        return {
            "sources": len(self.config.sources),
            "schedules": " ".join(self.config.newsletter.schedules),
            "http": f"{self.config.http.host}:{self.config.http.port}",
            "owner": self.owner,
        }


async def _serving(server: uvicorn.Server, sockets: list[socket.socket]) -> asyncio.Task[None]:
    """``server`` serving on ``sockets``, returned once it has started."""
    task = asyncio.create_task(server.serve(sockets=sockets))
    while not server.started and not task.done():
        await asyncio.sleep(0.01)  # uvicorn has no event for it; this is start-up only
    if task.done():
        await task  # its error, if it failed to start
        raise RuntimeError("the HTTP server stopped as it started")
    return task


Stamp = tuple[int, int, int]


def _stamp(path: Path) -> Stamp | None:
    """What changes when config.yaml is saved: modification time, size, inode (a rename)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """One look at config.yaml: its stamp and its bytes (None: unreadable)."""

    stamp: Stamp | None
    data: bytes | None

    @classmethod
    def of(cls, path: Path) -> _Snapshot:
        stamp = _stamp(path)
        try:
            data = path.read_bytes()
        except OSError:
            data = None
        return cls(stamp, data)
