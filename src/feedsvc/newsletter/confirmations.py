"""Sending the queued confirmation emails (the double opt-in link).

A sign-up never sends mail itself: it writes a row (newsletter.consent), and
the rows are sent from here, after the response has gone:

- by the web process, in a task of its own right after each sign-up
  (:class:`ConfirmationSender`), so the email arrives at once;
- by ``feedsvc run``'s confirmations job, which also takes rows left by a
  process that died, or queued by another process on the same database;
- by the CLI, which sends the rows it queued before it exits.

The claim skips rows whose subscriber is not pending, and rows for a mailbox
that was sent a confirmation less than :data:`SPACING` ago (four sign-ups in a
second send one email: the link in it stays good for all four).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import Counter
from collections.abc import Callable, Collection
from datetime import timedelta
from email.utils import parseaddr

from feedsvc.config import Config
from feedsvc.model import Confirmation, Subscriber, utcnow
from feedsvc.newsletter import message
from feedsvc.newsletter.mail import Mailer, SendStatus, create_mailer
from feedsvc.newsletter.render import render_confirmation
from feedsvc.newsletter.signing import load_signer
from feedsvc.newsletter.tokens import Purpose, Tokens
from feedsvc.store import Store
from feedsvc.store.confirmations import FAILED, SENT

log = logging.getLogger("feedsvc.confirmations")

SPACING = timedelta(minutes=1)
"""The least time between two confirmation emails to one mailbox."""
KEEP = timedelta(days=7)
"""How long rows are kept: past every limit's window, and long enough to say "did it go?"."""


async def send_queued(
    config: Config,
    store: Store,
    mailer: Mailer,
    tokens: Tokens,
    owner: str,
    *,
    only: Collection[int] | None = None,
) -> Counter[str]:
    """Claim and send due confirmations (or only the rows ``only`` names) until none are left.

    Returns how many ended in each state (``sent``, ``failed``, ``retry``).
    """
    outcomes: Counter[str] = Counter()
    while True:
        claimed = await asyncio.to_thread(
            store.confirmations.claim,
            owner,
            utcnow(),
            lease=config.mail.lease,
            spacing=SPACING,
            only=only,
        )
        for confirmation in claimed:
            outcomes[await _send(config, store, mailer, tokens, owner, confirmation)] += 1
        if not claimed:
            return outcomes


async def run_queue(
    config: Config, store: Store, mailer: Mailer, tokens: Tokens, owner: str
) -> Counter[str]:
    """The service's job: send what is due, then forget rows older than :data:`KEEP`."""
    outcomes: Counter[str] = Counter()
    if await asyncio.to_thread(store.confirmations.any_due, utcnow()):
        outcomes = await send_queued(config, store, mailer, tokens, owner)
    await asyncio.to_thread(store.confirmations.purge, utcnow() - KEEP)
    return outcomes


async def _send(
    config: Config,
    store: Store,
    mailer: Mailer,
    tokens: Tokens,
    owner: str,
    confirmation: Confirmation,
) -> str:
    subscriber = confirmation.subscriber
    url = tokens.link(config.site.base_url, Purpose.CONFIRM, subscriber)
    try:
        name, data = confirmation_message(config, subscriber, url)
    except Exception as exc:  # a DKIM key that does not work: the next valid config sends it
        log.error("confirmation not built", extra={"fields": {"error": str(exc)}})
        return await _later(config, store, owner, confirmation, f"not built: {exc}")
    sender = parseaddr(config.newsletter.from_)[1]
    result = await mailer.send(sender, subscriber.email, data, name=name)
    level = logging.INFO if result.status is SendStatus.SENT else logging.WARNING
    fields = {"subscriber": subscriber.id, "status": result.status.value, "detail": result.detail}
    log.log(level, "confirmation sent", extra={"fields": fields})
    if result.status in (SendStatus.SENT, SendStatus.UNKNOWN):  # unknown: never twice
        return await _finish(store, owner, confirmation, SENT, result.detail or None)
    if result.status is SendStatus.RETRY:
        return await _later(config, store, owner, confirmation, result.detail)
    return await _finish(store, owner, confirmation, FAILED, result.detail)


async def _later(
    config: Config, store: Store, owner: str, confirmation: Confirmation, detail: str
) -> str:
    """Back in the queue after ``mail.retry_delay``, doubling; failed after ``max_attempts``."""
    if confirmation.attempts >= config.mail.max_attempts:
        return await _finish(store, owner, confirmation, FAILED, detail)
    at = utcnow() + config.mail.retry_delay * 2 ** (confirmation.attempts - 1)
    await asyncio.to_thread(store.confirmations.retry, confirmation.id, owner, at, detail)
    return "retry"


async def _finish(
    store: Store, owner: str, confirmation: Confirmation, state: str, detail: str | None
) -> str:
    await asyncio.to_thread(store.confirmations.finish, confirmation.id, owner, state, detail)
    return state


class ConfirmationSender:
    """Sends the queue in a task of its own, nudged by each sign-up.

    Not a Starlette BackgroundTask: that holds the connection until it ends, so
    the next request on a keep-alive connection would wait for the SMTP server.
    A nudge while a run is going asks for one more run after it, so a sign-up
    never waits for the job's next tick. A task still running at shutdown leaves
    its rows to the job (their leases expire).
    """

    def __init__(self, config: Callable[[], Config], store: Store, tokens: Tokens, owner: str):
        self._config = config
        self._store = store
        self._tokens = tokens
        self._owner = owner
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def nudge(self) -> None:
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            self._again = False
            config = self._config()
            mailer = create_mailer(config)
            try:
                await send_queued(config, self._store, mailer, self._tokens, self._owner)
            except Exception:  # the response is gone: log it; the job tries again
                log.exception("confirmations failed")
            finally:
                await mailer.close()
            if not self._again:
                return


def confirmation_message(
    config: Config, subscriber: Subscriber, confirm_url: str
) -> tuple[str, bytes]:
    """The confirmation email's file-safe name (also its Message-ID) and its bytes.

    A one-off email: no List-* headers, but DKIM-signed like the digests when
    ``mail.dkim`` is configured, since inbox providers judge every message.
    """
    domain = parseaddr(config.newsletter.from_)[1].rpartition("@")[2] or "localhost"
    rendered = render_confirmation(
        config=config,
        locale=subscriber.locale,
        categories=subscriber.categories,
        schedule=subscriber.schedule,
    )
    template = message.prepare(
        rendered,
        sender=config.newsletter.from_,
        reply_to=config.newsletter.reply_to,
        list_id=None,
        domain=domain,
        signer=load_signer(config),
    )
    name = f"confirm-{subscriber.id}-{secrets.token_hex(6)}"
    data = template.build(
        to=subscriber.email, message_id=f"<{name}@{domain}>", date=utcnow(), confirm_url=confirm_url
    )
    return name, data
