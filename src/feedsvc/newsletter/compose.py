"""Digest messages: each subscriber's own links, the Message-ID of a delivery, and the
``Composer`` that renders each distinct digest once and fills in per message only the
recipient, ids, date and links. Deliveries, previews and test sends all build here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import parseaddr

from feedsvc.config import Config
from feedsvc.model import Delivery, Digest, Subscriber
from feedsvc.newsletter import message, render
from feedsvc.newsletter.signing import load_signer
from feedsvc.newsletter.tokens import Purpose, Tokens


@dataclass(frozen=True, slots=True)
class Links:
    """A subscriber's own links, the only per-message part of a digest."""

    unsubscribe: str
    preferences: str
    unsubscribe_mailto: str | None


def subscriber_links(config: Config, tokens: Tokens) -> Callable[[Subscriber], Links]:
    """Each subscriber's signed links (they name its random key, never the address or id)."""
    base = config.site.base_url
    mailbox = parseaddr(config.newsletter.reply_to or config.newsletter.from_)[1]

    def links(subscriber: Subscriber) -> Links:
        unsubscribe = tokens.subscriber_token(Purpose.UNSUBSCRIBE, subscriber)
        return Links(
            unsubscribe=f"{base.rstrip('/')}/unsubscribe/{unsubscribe}",
            preferences=tokens.link(base, Purpose.PREFERENCES, subscriber),
            unsubscribe_mailto=f"mailto:{mailbox}?subject=unsubscribe%20{unsubscribe}",
        )

    return links


def message_id(schedule: str, period: datetime, subscriber_id: int, domain: str) -> str:
    """The same for every attempt of one delivery, so a resent copy is recognisably the same.

    A period sent "now" has seconds, and they are part of its id.
    """
    stamp = f"{period:%Y%m%dT%H%M%SZ}" if period.second else f"{period:%Y%m%dT%H%MZ}"
    return f"<digest.{schedule}.{stamp}.{subscriber_id}@{domain}>"


class Composer:
    """Message bytes per subscriber: each distinct digest rendered once (the costly step),
    then per message only the recipient, ids, date and the subscriber's links filled in.

    ``subject_prefix`` marks every subject (``[Thử]`` for a test send).
    """

    def __init__(
        self,
        config: Config,
        links: Callable[[Subscriber], Links],
        domain: str,
        *,
        subject_prefix: str = "",
    ) -> None:
        self.config = config
        self.links = links
        self.domain = domain
        self.subject_prefix = subject_prefix
        self.signer = load_signer(config)  # the DKIM key, read once per run
        self._templates: dict[tuple[object, ...], message.MessageTemplate] = {}

    def compose(
        self,
        subscriber: Subscriber,
        delivery: Delivery,
        digest: Digest,
        now: datetime,
        view_url: str | None = None,
    ) -> bytes:
        """The message of ``delivery`` (its schedule and Message-ID) to ``subscriber``."""
        mid = delivery.message_id
        return self.message(subscriber, delivery.schedule, mid, digest, now, view_url)

    def message(
        self,
        subscriber: Subscriber,
        schedule: str,
        message_id: str,
        digest: Digest,
        now: datetime,
        view_url: str | None = None,
    ) -> bytes:
        """One message: ``view_url`` is its edition's page ("view in your browser")."""
        key = (
            view_url,
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
                view_url=view_url,
            )
            if self.subject_prefix:
                rendered = replace(rendered, subject=f"{self.subject_prefix} {rendered.subject}")
            template = self._templates[key] = message.prepare(
                rendered,
                sender=self.config.newsletter.from_,
                reply_to=self.config.newsletter.reply_to,
                list_id=schedule,
                domain=self.domain,
                signer=self.signer,
            )
        links = self.links(subscriber)
        return template.build(
            to=subscriber.email,
            message_id=message_id,
            date=now,
            unsubscribe_url=links.unsubscribe,
            unsubscribe_mailto=links.unsubscribe_mailto,
            preferences_url=links.preferences,
        )
