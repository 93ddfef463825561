"""Looking at an edition before it goes out: the preview an editor reads and the test
email they send themselves. Neither records a delivery nor moves anybody's window.

Both build the message exactly as a delivery would (``deliver.Composer``), so what
an editor sees is what a reader gets, links included: a preview carries the
subscriber's real, working links; a test email carries inert ones that open a page
saying it was a test.
"""

from __future__ import annotations

import email.policy
import secrets
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr

from feedsvc.config import Config
from feedsvc.model import Digest, Subscriber, SubscriberStatus
from feedsvc.newsletter.archive import archive_url, edition_url
from feedsvc.newsletter.compose import Composer, Links, message_id
from feedsvc.newsletter.digests import Digests, period_windows
from feedsvc.newsletter.edition import edition_of
from feedsvc.newsletter.mail import Mailer, SendResult
from feedsvc.newsletter.periods import latest_periods, next_fire
from feedsvc.newsletter.window import Window, upcoming_window
from feedsvc.store import Store

TEST_PAGE = "/test-email"  # where every link of a test email leads
TEST_PREFIX = {"vi": "[Thử]", "en": "[Test]"}


@dataclass(frozen=True, slots=True)
class Preview:
    """An edition as one reader would get it. ``message`` is None when it has nothing new."""

    subscriber: Subscriber
    schedule: str
    window: Window
    send_at: datetime | None  # when the upcoming edition goes out; None for the latest due
    digest: Digest
    message: bytes | None

    def part(self, subtype: str) -> str:
        """The ``plain`` or ``html`` part, exactly as it is sent."""
        body = self._parsed().get_body((subtype,))
        assert body is not None
        return str(body.get_content())

    @property
    def subject(self) -> str:
        return str(self._parsed()["Subject"])

    def _parsed(self) -> EmailMessage:
        if self.message is None:
            raise ValueError("an empty edition has no message")
        parsed = BytesParser(policy=email.policy.default).parsebytes(self.message)
        assert isinstance(parsed, EmailMessage)
        return parsed


def preview(
    config: Config,
    store: Store,
    composer: Composer,
    schedule: str,
    subscriber: Subscriber,
    now: datetime,
    *,
    latest: bool = False,
    test_id: str | None = None,
) -> Preview | None:
    """The upcoming edition for ``subscriber`` (what the next fire time would send, so far),
    or with ``latest`` the latest due period's, as ``digest send`` would send it now.

    Args:
        test_id: the Message-ID of a test email, instead of the delivery's.

    Returns None for ``latest`` while an earlier digest to them is still being sent.
    """
    cron = config.newsletter.cron(schedule)
    if latest:
        [(_, window)] = period_windows(config, store, schedule, now, [subscriber])[1]
        if window is None:
            return None
        send_at = None
    else:
        histories = store.deliveries.histories(schedule)
        last_fire = latest_periods(cron, config.site.timezone, now)[1]
        window = upcoming_window(histories.get(subscriber.id), last_fire, now)
        send_at = next_fire(cron, config.site.timezone, now)
    digest = Digests(config, store).for_subscriber(subscriber, window.since, window.until)
    if test_id is not None:
        view_url = config.site.base_url.rstrip("/") + TEST_PAGE
    elif latest:  # its page exists once it is sent
        edition = edition_of(
            schedule, window.until, subscriber.locale, subscriber.categories, digest
        )
        view_url = edition_url(config, edition)
    else:  # still building: no page yet, the archive has the earlier ones
        view_url = archive_url(config)
    data = None
    if not digest.empty:
        period = send_at or window.until
        mid = test_id or message_id(schedule, period, subscriber.id, composer.domain)
        data = composer.message(subscriber, schedule, mid, digest, now, view_url)
    return Preview(subscriber, schedule, window, send_at, digest, data)


def reader_for_test(
    config: Config, schedule: str, address: str, categories: list[str], locale: str | None
) -> Subscriber:
    """Whom a test email is for: the address, as a new reader of these categories."""
    return Subscriber(
        id=0,
        email=address,
        status=SubscriberStatus.ACTIVE,
        categories=tuple(categories or [c.id for c in config.categories]),
        schedule=schedule,
        locale=locale or config.site.language,
        timezone=config.site.timezone,
        created_at=datetime.min,
    )


def inert_links(config: Config) -> Links:
    page = config.site.base_url.rstrip("/") + TEST_PAGE
    return Links(unsubscribe=page, preferences=page, unsubscribe_mailto=None)


async def send_test(
    config: Config,
    store: Store,
    mailer: Mailer,
    schedule: str,
    reader: Subscriber,
    now: datetime,
    domain: str,
) -> tuple[Preview, SendResult | None]:
    """Send the upcoming edition to ``reader`` with a ``[Thử]``/``[Test]`` subject.

    Nothing is recorded. The result is None when the edition has nothing to send.
    """
    prefix = TEST_PREFIX.get(reader.locale, TEST_PREFIX["en"])
    composer = Composer(config, lambda _: inert_links(config), domain, subject_prefix=prefix)
    name = f"test-{schedule}-{now:%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"
    shown = preview(config, store, composer, schedule, reader, now, test_id=f"<{name}@{domain}>")
    assert shown is not None  # only the latest due period can be held
    if shown.message is None:
        return shown, None
    sender = parseaddr(config.newsletter.from_)[1]
    return shown, await mailer.send(sender, reader.email, shown.message, name=name)
