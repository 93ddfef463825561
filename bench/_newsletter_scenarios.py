"""The newsletter scenarios, each run in a fresh interpreter by `_measure.run_isolated`.

Each takes the JSON parameters `bench.newsletter` sends (``config``: a
config.yaml whose database is this run's copy of the newsroom and whose SMTP
port is this run's server; ``out``: where to write the figures a `Usage` has
no room for; ``subscribers``: how many to expect), does its setup, measures
only the sending inside a `Window`, checks the outcome, and returns the `Usage`.
The SMTP server runs in a process of its own, started by the caller, which
also checks what it received.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from aiosmtplib import SMTP

from bench._measure import BenchError, Usage, Window
from bench._newsroom import PERIOD, SCHEDULE
from feedsvc import config as config_module
from feedsvc import log as logsetup
from feedsvc.config import Config
from feedsvc.model import Delivery, DeliveryState, Subscriber, SubscriberStatus
from feedsvc.newsletter.compose import Links, message_id, subscriber_links
from feedsvc.newsletter.deliver import Deliverer, Summary
from feedsvc.newsletter.digests import Digests
from feedsvc.newsletter.mail import OutboxMailer, create_mailer
from feedsvc.newsletter.tokens import Tokens
from feedsvc.store import Store

SECRET = "bench-secret-key-0123456789abcdef"
# Half an hour after the 07:00 (Hà Nội) digest the entries are new for.
SEND_AT = PERIOD + timedelta(minutes=30)


def digest_scenario(params: dict[str, Any]) -> Usage:
    """``Deliverer.plan`` and ``send`` through the real SmtpMailer; measure both."""
    logsetup.setup()  # as the CLI does: one INFO line per delivery, to stderr
    config = config_module.load(params["config"])
    store = Store.open(config.database_url)
    mailer = create_mailer(config)
    deliverer = Deliverer(config, store, mailer, links=_links(config), clock=_clock_from(SEND_AT))
    try:
        with Window() as window:
            with Window() as planning:
                plan = deliverer.plan(SCHEDULE)
            summary = asyncio.run(_send(deliverer))
    finally:
        store.close()
    expected = params["subscribers"]
    if plan.created != expected or summary.states != {"sent": expected} or summary.retries:
        raise BenchError(
            f"expected {expected} deliveries planned and sent, got {plan.created} planned, "
            f"{summary.states}, {summary.retries} retries"
        )
    figures = {"plan_cpu_s": planning.usage.cpu_s, "plan_wall_s": planning.usage.wall_s}
    Path(params["out"]).write_text(json.dumps(figures))
    return window.usage


async def _send(deliverer: Deliverer) -> Summary:
    try:
        return await deliverer.send(SCHEDULE)
    finally:
        await deliverer.mailer.close()  # QUIT on each connection, as `digest send` does


def _links(config: Config) -> Callable[[Subscriber], Links]:
    return subscriber_links(config, Tokens(SECRET))


def _clock_from(start: datetime) -> Callable[[], datetime]:
    """A clock that starts at ``start`` and runs at real speed (leases age as they would)."""
    began = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - began)


def bare_smtp_scenario(params: dict[str, Any]) -> Usage:
    """The same messages, built beforehand, sent by ``aiosmtplib.SMTP.sendmail`` in a loop."""
    config = config_module.load(params["config"])
    with Window() as building:  # for information: what selecting and composing alone costs
        messages = _prebuilt(config, Path(params["out"]).parent / "unused-outbox")
    if len(messages) != params["subscribers"]:
        raise BenchError(f"built {len(messages)} messages for {params['subscribers']} subscribers")
    sender = parseaddr(config.newsletter.from_)[1]
    usage = asyncio.run(_sendmail_loop(config.mail.smtp.port, sender, messages))
    figures = {
        "build_cpu_s": building.usage.cpu_s,
        "mean_bytes": sum(len(data) for _, data in messages) / len(messages),
    }
    Path(params["out"]).write_text(json.dumps(figures))
    return usage


def _prebuilt(config: Config, outbox: Path) -> list[tuple[str, bytes]]:
    """``(address, bytes)`` of each subscriber's digest, as the digest scenario sends it."""
    store = Store.open(config.database_url)
    try:
        deliverer = Deliverer(config, store, OutboxMailer(outbox), links=_links(config))
        digests, composer = Digests(config, store), deliverer.composer()
        active = store.subscribers.list(schedule=SCHEDULE, status=SubscriberStatus.ACTIVE)
        since = PERIOD - timedelta(days=1)  # a first digest: one period back
        messages = []
        for n, subscriber in enumerate(active):
            digest = digests.for_subscriber(subscriber, since, PERIOD)
            delivery = Delivery(
                id=n + 1,
                subscriber_id=subscriber.id,
                schedule=SCHEDULE,
                period=PERIOD,
                since=since,
                until=PERIOD,
                state=DeliveryState.SENDING,
                message_id=message_id(SCHEDULE, PERIOD, subscriber.id, deliverer.domain),
            )
            data = composer.compose(subscriber, delivery, digest, SEND_AT)
            messages.append((subscriber.email, data))
    finally:
        store.close()
    return messages


async def _sendmail_loop(port: int, sender: str, messages: list[tuple[str, bytes]]) -> Usage:
    with Window() as window:
        async with SMTP(hostname="127.0.0.1", port=port, start_tls=False) as smtp:
            for recipient, data in messages:
                errors, _ = await smtp.sendmail(sender, [recipient], data)
                if errors:
                    raise BenchError(f"the server refused {recipient}: {errors}")
    return window.usage
