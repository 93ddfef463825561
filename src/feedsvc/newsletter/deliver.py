"""Sending a schedule's digests: plan the period's deliveries, then send each exactly once.

``plan`` creates one delivery row per active subscriber for the schedule's
latest period (unique in the database, so every process may plan the same
period). ``send`` claims due rows, builds each digest and hands it to the
mailer, and records the outcome:

========================  ==================================================
mailer says               the delivery becomes
========================  ==================================================
SENT                      sent
RETRY (4xx, no answer)    pending again after a backoff; failed after
                          ``max_attempts``
PERMANENT (5xx)           failed, and the subscriber's bounce count goes up
UNKNOWN (drop after DATA) unknown: the server may have it, never resent
nothing new               empty: no email
========================  ==================================================

What one ``send`` run works out is cached for that run only (a long-running
service must not keep every day's digests): each window's new entries are read
once, each distinct (categories, window) digest is selected once, and each
distinct digest content (categories, language, time zone, entries) is rendered
once; a message only fills in its subscriber's links and headers. Outcomes are
written with group commit (``_Outcomes``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parseaddr

from feedsvc import lease, metrics
from feedsvc.config import Config
from feedsvc.lease import Heartbeat, Holder
from feedsvc.model import (
    Delivery,
    DeliveryOutcome,
    DeliveryState,
    Digest,
    Edition,
    Subscriber,
    SubscriberStatus,
)
from feedsvc.model import utcnow as _utcnow
from feedsvc.newsletter.archive import edition_url
from feedsvc.newsletter.compose import Composer, Links, message_id
from feedsvc.newsletter.digests import Digests, local_time, period_windows
from feedsvc.newsletter.edition import edition_of
from feedsvc.newsletter.mail import Mailer, SendStatus
from feedsvc.newsletter.periods import is_fire_time, next_fire
from feedsvc.newsletter.tokens import secret_key
from feedsvc.newsletter.verp import ReturnPath, verp_address
from feedsvc.newsletter.window import Window
from feedsvc.store import Store

log = logging.getLogger("feedsvc.digest")


@dataclass(frozen=True, slots=True)
class Plan:
    schedule: str
    period: datetime
    subscribers: int
    created: int
    waiting: int = 0  # subscribers left out: an earlier digest of theirs is still open
    resumed: bool = False  # an unfinished period sent "now" is finished instead
    since: datetime | None = None  # where the earliest of its windows starts


@dataclass(slots=True)
class Summary:
    """What a ``send`` run did: the final state of each delivery, and how many retries."""

    states: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    held: list[Holder] = field(default_factory=list)  # leases of live or remote processes

    def add(self, state: DeliveryState) -> None:
        if state is DeliveryState.PENDING:  # not final: it comes back in a later batch
            self.retries += 1
        else:
            self.states[state.value] = self.states.get(state.value, 0) + 1


@dataclass(slots=True)
class _Run:
    """What one ``send`` call caches, dropped when it returns."""

    digests: Digests
    composer: Composer
    outcomes: _Outcomes
    summary: Summary = field(default_factory=Summary)
    editions: set[str] = field(default_factory=set)  # stored already


@dataclass(frozen=True, slots=True)
class _Work:
    """A claimed delivery with what sending it needs (None: no longer subscribed)."""

    delivery: Delivery
    subscriber: Subscriber | None
    digest: Digest
    edition: Edition | None


class _Outcomes:
    """Records closed deliveries with group commit.

    The outcomes that arrive while one write transaction commits go together in
    the next, so the database sees a few commits per batch rather than one per
    message. Each sender waits until its outcome is committed before it takes
    another message: a kill -9 still leaves at most ``mail.concurrency`` messages
    sent but not recorded, as with one commit per message.
    """

    def __init__(self, store: Store, owner: str) -> None:
        self._store = store
        self._owner = owner
        self._queued: list[tuple[DeliveryOutcome, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, outcome: DeliveryOutcome) -> None:
        committed = asyncio.get_running_loop().create_future()
        self._queued.append((outcome, committed))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        await committed

    async def _write(self) -> None:
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                outcomes = [outcome for outcome, _ in batch]
                recorded = await asyncio.to_thread(
                    self._store.deliveries.finish_many, self._owner, outcomes
                )
                _log_lost(o.delivery_id for o in outcomes if o.delivery_id not in recorded)
            except BaseException as exc:
                for _, committed in batch:
                    if not committed.done():
                        committed.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
            else:
                for _, committed in batch:
                    if not committed.done():
                        committed.set_result(None)


class Deliverer:
    def __init__(
        self,
        config: Config,
        store: Store,
        mailer: Mailer,
        *,
        links: Callable[[Subscriber], Links],
        owner: str | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.config = config
        self.store = store
        self.mailer = mailer
        self.links = links
        self.owner = owner or lease.process_owner()
        self.clock = clock
        self.sender = parseaddr(config.newsletter.from_)[1]
        self.domain = self.sender.rpartition("@")[2] or "localhost"
        # With a bounce mailbox, each delivery's envelope sender names it (signed VERP),
        # so a report that arrives later is matched to the delivery it is about.
        self.return_path = (
            ReturnPath.from_config(config, secret_key(config)) if config.mail.bounces else None
        )
        self.stopping = False  # set by the service on SIGTERM: finish the batch, claim no more

    def composer(self) -> Composer:
        return Composer(self.config, self.links, self.domain)

    def plan(self, schedule: str, now: datetime | None = None) -> Plan:
        """Create the latest period's deliveries for every active subscriber of ``schedule``.

        A subscriber whose earlier digest is still pending or sending gets none
        this period (``newsletter.window``): the next one after it covers the gap.
        """
        now = now or self.clock()
        return self._plan(schedule, *period_windows(self.config, self.store, schedule, now), now)

    def plan_now(self, schedule: str, now: datetime | None = None) -> Plan:
        """Close a period of ``schedule`` at ``now`` for every active subscriber (``digest
        send --now``); the next scheduled period starts where it ends.

        If an earlier period sent "now" is still being sent (a crash, then the same
        command again), that one is finished instead: no second period starts.
        """
        now = (now or self.clock()).replace(microsecond=0)
        cron = self.config.newsletter.cron(schedule)
        unfinished = [
            period
            for period in self.store.deliveries.open_periods(schedule)
            if not is_fire_time(cron, self.config.site.timezone, period)
        ]
        if unfinished:
            return Plan(schedule, unfinished[-1], 0, 0, resumed=True)
        windows = period_windows(self.config, self.store, schedule, now, period=now)
        return self._plan(schedule, *windows, now)

    def _plan(
        self,
        schedule: str,
        period: datetime,
        windows: list[tuple[Subscriber, Window | None]],
        now: datetime,
    ) -> Plan:
        rows = [
            (
                subscriber.id,
                window.since,
                window.until,
                self.message_id(schedule, period, subscriber),
            )
            for subscriber, window in windows
            if window is not None
        ]
        created = self.store.deliveries.create(schedule, period, rows, now)
        waiting = len(windows) - len(rows)
        fields = {"schedule": schedule, "period": period.isoformat(), "created": created}
        log.info("planned", extra={"fields": fields | ({"waiting": waiting} if waiting else {})})
        since = min((window.since for _, window in windows if window), default=None)
        return Plan(schedule, period, len(windows), created, waiting, since=since)

    def why_nothing(self, plan: Plan, now: datetime | None = None) -> str:
        """One line on why a send found nothing to send, and what waits for the next one."""
        now = now or self.clock()
        schedule = plan.schedule
        counts, last_sent = self.store.deliveries.period_report(schedule, plan.period)
        edition = f"the {schedule} edition of {local_time(self.config, plan.period)}"
        if plan.subscribers == 0:
            reason = f"{schedule} has no active subscribers"
        elif counts.get("sent") and plan.created == 0:
            at = f", last at {local_time(self.config, last_sent)}" if last_sent else ""
            reason = f"{edition} was already sent to {counts['sent']} subscribers{at}"
        else:
            since = f" since {local_time(self.config, plan.since)}" if plan.since else ""
            reason = f"nothing new{since} for {edition}"
        cron = self.config.newsletter.cron(schedule)
        upcoming = next_fire(cron, self.config.site.timezone, now)
        waiting = self.store.categories.count_news(plan.period, now)
        line = (
            f"nothing sent: {reason}; {waiting} {'story' if waiting == 1 else 'stories'}"
            f" waiting for the next edition, {local_time(self.config, upcoming)}"
        )
        backlog, news = self.store.categories.count_backlog()
        if backlog and not news:
            line += (
                f" ({backlog} stored entries are backlog: old news from a newly added source,"
                " never sent in a digest)"
            )
        return line

    def message_id(self, schedule: str, period: datetime, subscriber: Subscriber) -> str:
        return message_id(schedule, period, subscriber.id, self.domain)

    async def send(
        self,
        schedule: str | None = None,
        *,
        wait: timedelta = timedelta(0),
        wait_for_leases: bool = False,
    ) -> Summary:
        """Send every due delivery (of ``schedule``).

        Args:
            wait: how long to wait for retries that fall due meanwhile (the CLI
                waits; the service's next tick picks them up).
            wait_for_leases: also wait for deliveries that a live or remote
                process holds, until their leases expire, and send what they left.
                Otherwise those are listed in the summary's ``held``.
        """
        run = _Run(
            Digests(self.config, self.store), self.composer(), _Outcomes(self.store, self.owner)
        )
        deadline = self.clock() + wait
        while not self.stopping:
            batch = await asyncio.to_thread(self._claim, schedule)
            if batch:
                await self._send_batch(batch, run)
                continue
            wake, held = await asyncio.to_thread(self._next_wake, schedule, deadline)
            if wait_for_leases and held:
                wake = min(wake or held[0].until, *(holder.until for holder in held))
            if wake is None:
                run.summary.held = held
                break
            await asyncio.sleep(max(0.0, (wake - self.clock()).total_seconds()) + 0.01)
        return run.summary

    def _claim(self, schedule: str | None) -> list[Delivery]:
        """Claim a batch, taking over at once the leases of dead processes of this host."""
        now = self.clock()
        holders = self.store.deliveries.holders(now, schedule)
        dead = lease.dead_owners([h for h in holders if h.owner != self.owner])
        if dead:
            log.warning("taking over", extra={"fields": {"dead": " ".join(dead)}})
        return self.store.deliveries.claim(
            self.owner,
            now,
            self.config.mail.lease,
            schedule=schedule,
            limit=self._batch_size(),
            take_over=dead,
        )

    def _next_wake(
        self, schedule: str | None, deadline: datetime
    ) -> tuple[datetime | None, list[Holder]]:
        """When a retry falls due before ``deadline`` (or None), and the leases others hold."""
        due = self.store.deliveries.next_attempt(schedule)
        held = lease.live_holders(self.store.deliveries.holders(self.clock(), schedule), self.owner)
        return (due if due is not None and due <= deadline else None), held

    def _batch_size(self) -> int:
        """Deliveries per claim: enough to keep every connection busy between claims, few
        enough that the last of them is sent well within the lease at the rate limit."""
        mail = self.config.mail
        within_lease = int(mail.rate_per_second * mail.lease.total_seconds() / 2)
        return max(mail.concurrency, min(mail.concurrency * 16, within_lease))

    async def _send_batch(self, batch: list[Delivery], run: _Run) -> None:
        """Send a claimed batch, ``mail.concurrency`` at a time, renewing its leases."""
        slots = asyncio.Semaphore(self.config.mail.concurrency)
        work = await asyncio.to_thread(self._prepare, batch, run)
        beat = Heartbeat([d.id for d in batch], self._renew, self.config.mail.lease / 3)

        async def one(item: _Work) -> None:
            async with slots:
                if item.delivery.id not in beat.lost:  # taken over while this one waited
                    run.summary.add(await self._deliver_safely(item, run))
                beat.done(item.delivery.id)

        async with beat:
            done = await asyncio.gather(*(one(item) for item in work), return_exceptions=True)
        for result in done:
            if isinstance(result, BaseException):
                raise result

    async def _renew(self, ids: list[int]) -> list[int]:
        until = self.clock() + self.config.mail.lease
        return await asyncio.to_thread(self.store.deliveries.renew, self.owner, ids, until)

    def _prepare(self, batch: list[Delivery], run: _Run) -> list[_Work]:
        """Each claimed delivery with its subscriber, digest and edition (one thread hop);
        the editions this run has not stored yet are stored."""
        subscribers = self.store.subscribers.many([d.subscriber_id for d in batch])
        work = []
        for delivery in batch:
            subscriber = subscribers.get(delivery.subscriber_id)
            if subscriber is None or subscriber.status is not SubscriberStatus.ACTIVE:
                empty = Digest((), since=delivery.since, until=delivery.until)
                work.append(_Work(delivery, None, empty, None))
                continue
            digest = run.digests.for_subscriber(subscriber, delivery.since, delivery.until)
            edition = None
            if not digest.empty:
                edition = edition_of(
                    delivery.schedule,
                    delivery.period,
                    subscriber.locale,
                    subscriber.categories,
                    digest,
                )
            work.append(_Work(delivery, subscriber, digest, edition))
        new = {item.edition.id: item.edition for item in work if item.edition}
        new = {key: value for key, value in new.items() if key not in run.editions}
        self.store.editions.put(new.values(), self.clock())
        run.editions.update(new)
        return work

    async def _deliver_safely(self, item: _Work, run: _Run) -> DeliveryState:
        """:meth:`_deliver`, with a bug or a database error put back as a retry.

        This process never claims a row it holds itself, so a row it stops
        working on must not stay ``sending`` under its lease until it exits.
        """
        try:
            return await self._deliver(item, run)
        except Exception as exc:
            delivery = item.delivery
            log.exception("delivery failed", extra={"fields": {"delivery": delivery.id}})
            retry_at = self.clock() + self.config.mail.retry_delay
            detail = f"internal error: {type(exc).__name__}: {exc}"
            await asyncio.to_thread(
                self.store.deliveries.retry, self.owner, delivery.id, detail, retry_at
            )
            return DeliveryState.PENDING

    async def _deliver(self, item: _Work, run: _Run) -> DeliveryState:
        """Send one claimed delivery; record and return its new state."""
        delivery, subscriber = item.delivery, item.subscriber
        if subscriber is None:
            return await self._finish(run, delivery, DeliveryState.EMPTY, "no longer subscribed")
        if item.edition is None:
            return await self._finish(run, delivery, DeliveryState.EMPTY, None)
        now = self.clock()
        try:
            view = edition_url(self.config, item.edition)
            data = run.composer.compose(subscriber, delivery, item.digest, now, view)
        except ValueError as exc:  # a bad From or Reply-To: no send could succeed
            # Failed, not stuck in `sending`; its stories come again in the next digest.
            detail = f"cannot build the message: {exc}"
            return await self._finish(run, delivery, DeliveryState.FAILED, detail)
        sender = verp_address(self.return_path, delivery.id) if self.return_path else self.sender
        result = await self.mailer.send(sender, subscriber.email, data, name=str(delivery.id))
        if result.status is SendStatus.SENT:
            return await self._finish(run, delivery, DeliveryState.SENT, None, item.edition.id)
        if result.status is SendStatus.UNKNOWN:
            return await self._finish(run, delivery, DeliveryState.UNKNOWN, result.detail)
        if result.status is SendStatus.UNDELIVERABLE:  # our server's limit, not a bounce
            return await self._finish(run, delivery, DeliveryState.FAILED, result.detail)
        if result.status is SendStatus.PERMANENT:
            limit = self.config.mail.bounce_limit
            await asyncio.to_thread(self.store.subscribers.record_bounce, subscriber.id, limit)
            return await self._finish(run, delivery, DeliveryState.FAILED, result.detail)
        if delivery.attempts >= self.config.mail.max_attempts:
            return await self._finish(run, delivery, DeliveryState.FAILED, result.detail)
        retry_at = now + self.config.mail.retry_delay * 2 ** (delivery.attempts - 1)
        retried = await asyncio.to_thread(
            self.store.deliveries.retry, self.owner, delivery.id, result.detail, retry_at
        )
        if not retried:
            _log_lost([delivery.id])
        log.info("retry", extra={"fields": {"delivery": delivery.id, "error": result.detail}})
        metrics.count_delivery("retry")
        return DeliveryState.PENDING

    async def _finish(
        self,
        run: _Run,
        delivery: Delivery,
        state: DeliveryState,
        error: str | None,
        edition: str | None = None,
    ) -> DeliveryState:
        outcome = DeliveryOutcome(delivery.id, state, self.clock(), error, edition)
        await run.outcomes.record(outcome)
        metrics.count_delivery(state.value)
        fields: dict[str, object] = {"delivery": delivery.id, "state": state.value}
        if error:
            fields["error"] = error
        log.log(
            logging.WARNING if state is DeliveryState.FAILED else logging.INFO,
            "sent",
            extra={"fields": fields},
        )
        return state


def _log_lost(ids: Iterable[int]) -> None:
    """Outcomes dropped because another process took the lease over (this one stalled)."""
    lost = list(ids)
    if lost:
        log.warning("outcome not recorded: lease lost", extra={"fields": {"deliveries": lost}})
