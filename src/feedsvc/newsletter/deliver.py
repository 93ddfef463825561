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

Rendering is the costly step, so it runs once per distinct digest content
(categories, language, time zone, entries) and each message only fills in its
subscriber's links.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parseaddr

from feedsvc import metrics
from feedsvc.config import Config
from feedsvc.model import Delivery, DeliveryState, Digest, Filed, Subscriber, SubscriberStatus
from feedsvc.model import utcnow as _utcnow
from feedsvc.newsletter import message, render
from feedsvc.newsletter.mail import Mailer, SendStatus
from feedsvc.newsletter.periods import latest_periods
from feedsvc.newsletter.select import select_digest
from feedsvc.newsletter.tokens import Purpose, Tokens
from feedsvc.store import Store

log = logging.getLogger("feedsvc.digest")


@dataclass(frozen=True, slots=True)
class Links:
    """A subscriber's own links, the only per-message part of a digest."""

    unsubscribe: str
    preferences: str
    unsubscribe_mailto: str


@dataclass(frozen=True, slots=True)
class Plan:
    schedule: str
    period: datetime
    subscribers: int
    created: int


@dataclass(slots=True)
class Summary:
    """What a ``send`` run did: the final state of each delivery, and how many retries."""

    states: dict[str, int] = field(default_factory=dict)
    retries: int = 0

    def add(self, state: DeliveryState) -> None:
        if state is DeliveryState.PENDING:  # not final: it comes back in a later batch
            self.retries += 1
        else:
            self.states[state.value] = self.states.get(state.value, 0) + 1


class Digests:
    """Builds subscribers' digests, reading each window's new entries once."""

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store
        self._candidates: dict[tuple[datetime, datetime], list[Filed]] = {}

    def for_subscriber(self, subscriber: Subscriber, since: datetime, until: datetime) -> Digest:
        """The digest ``subscriber`` gets for ``(since, until]`` (entries read once per window)."""
        window = (since, until)
        if window not in self._candidates:
            self._candidates[window] = self.store.categories.first_seen_between(since, until)
        return select_digest(
            self._candidates[window],
            categories=self.config.categories,
            wanted=subscriber.categories,
            since=since,
            until=until,
            max_per_category=self.config.newsletter.max_items_per_category,
        )


def subscriber_links(config: Config, tokens: Tokens) -> Callable[[Subscriber], Links]:
    """Each subscriber's signed links (they carry the id, never the address)."""
    base = config.site.base_url
    mailbox = parseaddr(config.newsletter.reply_to or config.newsletter.from_)[1]

    def links(subscriber: Subscriber) -> Links:
        unsubscribe = tokens.subscriber_token(Purpose.UNSUBSCRIBE, subscriber.id)
        return Links(
            unsubscribe=f"{base.rstrip('/')}/unsubscribe/{unsubscribe}",
            preferences=tokens.link(base, Purpose.PREFERENCES, subscriber.id),
            unsubscribe_mailto=f"mailto:{mailbox}?subject=unsubscribe%20{unsubscribe}",
        )

    return links


def message_id(schedule: str, period: datetime, subscriber_id: int, domain: str) -> str:
    """The same for every attempt of one delivery, so a resent copy is recognisably the same."""
    return f"<digest.{schedule}.{period:%Y%m%dT%H%MZ}.{subscriber_id}@{domain}>"


class Deliverer:
    def __init__(
        self,
        config: Config,
        store: Store,
        mailer: Mailer,
        *,
        links: Callable[[Subscriber], Links],
        owner: str = "feedsvc",
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.config = config
        self.store = store
        self.mailer = mailer
        self.links = links
        self.owner = owner
        self.clock = clock
        self.sender = parseaddr(config.newsletter.from_)[1]
        self.domain = self.sender.rpartition("@")[2] or "localhost"
        self.stopping = False  # set by the service on SIGTERM: finish the batch, claim no more
        self.digests = Digests(config, store)
        self._templates: dict[tuple[object, ...], message.MessageTemplate] = {}

    def plan(self, schedule: str, now: datetime | None = None) -> Plan:
        """Create this period's deliveries for every active subscriber of ``schedule``."""
        now = now or self.clock()
        cron = self.config.newsletter.schedules[schedule]
        previous, period = latest_periods(cron, self.config.site.timezone, now)
        active = self.store.subscribers.list(schedule=schedule, status=SubscriberStatus.ACTIVE)
        last = self.store.deliveries.last_until(schedule)
        windows = [
            (
                subscriber.id,
                min(last.get(subscriber.id, previous), period),
                period,
                message_id(schedule, period, subscriber.id, self.domain),
            )
            for subscriber in active
        ]
        created = self.store.deliveries.create(schedule, period, windows, now)
        log.info(
            "planned",
            extra={
                "fields": {"schedule": schedule, "period": period.isoformat(), "created": created}
            },
        )
        return Plan(schedule, period, len(active), created)

    async def send(self, schedule: str | None = None, *, wait: timedelta = timedelta(0)) -> Summary:
        """Send every due delivery (of ``schedule``); wait up to ``wait`` for retries that
        fall due meanwhile (the CLI waits, the service's next tick picks them up)."""
        summary = Summary()
        deadline = self.clock() + wait
        limit = self.config.mail.concurrency * 4
        lease = self.config.mail.lease
        while not self.stopping:
            batch = await asyncio.to_thread(
                self.store.deliveries.claim,
                self.owner,
                self.clock(),
                lease,
                schedule=schedule,
                limit=limit,
            )
            if batch:
                await self._send_batch(batch, summary)
                continue
            due = await asyncio.to_thread(self.store.deliveries.next_attempt, schedule)
            if due is None or due > deadline:
                return summary
            await asyncio.sleep(max(0.0, (due - self.clock()).total_seconds()) + 0.01)
        return summary

    async def _send_batch(self, batch: list[Delivery], summary: Summary) -> None:
        slots = asyncio.Semaphore(self.config.mail.concurrency)
        ids = [delivery.subscriber_id for delivery in batch]
        subscribers = await asyncio.to_thread(self.store.subscribers.many, ids)

        async def one(delivery: Delivery) -> None:
            async with slots:
                subscriber = subscribers.get(delivery.subscriber_id)
                summary.add(await self.deliver(delivery, subscriber))

        await asyncio.gather(*(one(delivery) for delivery in batch))

    async def deliver(self, delivery: Delivery, subscriber: Subscriber | None) -> DeliveryState:
        """Build and send one claimed delivery; record and return its new state."""
        now = self.clock()
        if subscriber is None or subscriber.status is not SubscriberStatus.ACTIVE:
            return await self._finish(delivery, DeliveryState.EMPTY, "no longer subscribed")
        digest = await asyncio.to_thread(
            self.digests.for_subscriber, subscriber, delivery.since, delivery.until
        )
        if digest.empty:
            return await self._finish(delivery, DeliveryState.EMPTY, None)
        data = self.compose(subscriber, delivery, digest, now)
        result = await self.mailer.send(self.sender, subscriber.email, data, name=str(delivery.id))
        if result.status is SendStatus.SENT:
            return await self._finish(delivery, DeliveryState.SENT, None)
        if result.status is SendStatus.UNKNOWN:
            return await self._finish(delivery, DeliveryState.UNKNOWN, result.detail)
        if result.status is SendStatus.PERMANENT:
            await asyncio.to_thread(self.store.subscribers.record_bounce, subscriber.id)
            return await self._finish(delivery, DeliveryState.FAILED, result.detail)
        if delivery.attempts >= self.config.mail.max_attempts:
            return await self._finish(delivery, DeliveryState.FAILED, result.detail)
        retry_at = now + self.config.mail.retry_delay * 2 ** (delivery.attempts - 1)
        await asyncio.to_thread(self.store.deliveries.retry, delivery.id, result.detail, retry_at)
        log.info("retry", extra={"fields": {"delivery": delivery.id, "error": result.detail}})
        metrics.count_delivery("retry")
        return DeliveryState.PENDING

    async def _finish(
        self, delivery: Delivery, state: DeliveryState, error: str | None
    ) -> DeliveryState:
        await asyncio.to_thread(
            self.store.deliveries.finish, delivery.id, state, self.clock(), error
        )
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

    def compose(
        self, subscriber: Subscriber, delivery: Delivery, digest: Digest, now: datetime
    ) -> bytes:
        """The message bytes: rendered once per distinct digest, links filled in per subscriber."""
        key = (
            subscriber.locale,
            subscriber.timezone,
            tuple(subscriber.categories),
            subscriber.schedule,
            tuple((s.category_id, s.more, tuple(e.id for e in s.entries)) for s in digest.sections),
        )
        template = self._templates.get(key)
        if template is None:
            rendered = render.render_digest(
                digest,
                config=self.config,
                locale=subscriber.locale,
                timezone=subscriber.timezone,
                now=now,
                categories=subscriber.categories,
                schedule=subscriber.schedule,
            )
            template = self._templates[key] = message.prepare(
                rendered,
                sender=self.config.newsletter.from_,
                reply_to=self.config.newsletter.reply_to,
                list_id=delivery.schedule,
                domain=self.domain,
            )
        links = self.links(subscriber)
        return template.build(
            to=subscriber.email,
            message_id=delivery.message_id,
            date=now,
            unsubscribe_url=links.unsubscribe,
            unsubscribe_mailto=links.unsubscribe_mailto,
            preferences_url=links.preferences,
        )
