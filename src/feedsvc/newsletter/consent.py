"""Consent: how an address signs up, confirms and leaves, the same on every path.

The web form, ``feedsvc subscribers …`` and CSV import all call these functions;
none of them decides anything on its own.

- **A sign-up** of a new address makes it pending, with a fresh link key. An
  unsubscribed address becomes pending again with a *new* key: a new sign-up,
  so every link of the old one (its confirm link too) names nobody. A pending
  address takes the new choices and keeps its key: the same sign-up, whose
  link already sent still works. An active or bounced address is left alone.
  Every case queues one confirmation row, and the sender skips rows whose
  subscriber is not pending; so every case does the same database work and
  the form's timing does not tell who subscribes.
- **Confirmation emails per canonical mailbox**: at most ``SIGNUPS_PER_MAILBOX``
  an hour (counted from the queue at sign-up, resend and import, in the
  database that every process shares) and at most one per
  ``newsletter.confirmations.SPACING`` (the sender skips the rest: the person
  already has a working link).
- **Only the person brings an address back.** Confirming, ``--confirmed`` and
  imports never make an unsubscribed or bounced address active again.
- **Links from before keys** signed the subscriber's id. Unsubscribe and
  preferences links keep working for the subscriber they were made for, that
  is when they were signed after its row was created (RFC 8058 expects an old
  email's unsubscribe link to work); a confirm link of that era confirms
  nothing (it expired after 7 days anyway).

::

    FeedsvcError
    └── ConsentError     what was asked cannot be done for this address; says why
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from feedsvc.config import Config
from feedsvc.errors import FeedsvcError
from feedsvc.model import Subscriber, SubscriberStatus
from feedsvc.newsletter.roster import Row, Signup
from feedsvc.newsletter.tokens import InvalidToken, Purpose, Tokens
from feedsvc.store import Store
from feedsvc.store.subscribers import canonical_mailbox, new_key

log = logging.getLogger("feedsvc.consent")

SIGNUPS_PER_MAILBOX = (5, timedelta(hours=1))
GONE = (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED)


class ConsentError(FeedsvcError):
    """The action cannot be done for this address (unknown, left, or at its limit)."""


class Outcome(StrEnum):
    """What a consent action did, as the CLI reports it."""

    CONFIRMED = "confirmed"
    ALREADY_ACTIVE = "already active"
    QUEUED = "confirmation queued"
    UNSUBSCRIBED = "unsubscribed"
    ALREADY_UNSUBSCRIBED = "already unsubscribed"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class SignUp:
    """A stored sign-up: the subscriber as written, whether it was new, its queued email
    (None: added as confirmed by an operator, no email)."""

    subscriber: Subscriber
    created: bool
    queued: int | None


@dataclass(slots=True)
class ImportSummary:
    """What an import did, row by row, and the confirmations it queued."""

    active: int = 0
    pending: int = 0
    kept: int = 0  # unsubscribed or bounced: stored or left so
    present: int = 0
    limited: int = 0
    queued: list[int] = field(default_factory=list)


def mailbox_hash(email: str) -> str:
    """What the queue stores of the mailbox: a hash, never a second copy of the address."""
    return hashlib.sha256(canonical_mailbox(email).encode()).hexdigest()


def sign_up(config: Config, store: Store, signup: Signup, *, origin: str, now: datetime) -> SignUp:
    """Store a sign-up and queue its confirmation email (see the module docstring).

    Raises:
        ConsentError: the mailbox has had its share of confirmation emails this hour.
    """
    seen: list[bool] = []

    def rule(stored: Subscriber, created: bool) -> Mapping[str, Any]:
        seen.append(created)
        return after_sign_up(stored, signup, created)

    fields = {
        "email": signup.email,
        "categories": signup.categories,
        "schedule": signup.schedule,
        "locale": signup.locale,
        "timezone": config.site.timezone,
        "topics": signup.topics,
    }
    result = store.confirmations.sign_up(
        fields,
        mailbox=mailbox_hash(signup.email),
        origin=origin,
        limit=SIGNUPS_PER_MAILBOX,
        rule=rule,
        now=now,
    )
    if result is None:
        raise _limited(signup.email)
    subscriber, queued = result
    fields_logged = {"subscriber": subscriber.id, "new": seen[0], "origin": origin}
    log.info("signed up", extra={"fields": fields_logged})
    return SignUp(subscriber, seen[0], queued)


def add(
    config: Config, store: Store, signup: Signup, *, confirmed: bool, origin: str, now: datetime
) -> SignUp:
    """An operator adds a reader (``subscribers add``): active at once with ``confirmed``
    (they agreed some other way), else a sign-up like the form's, its email queued.

    Raises:
        ConsentError: the address is already a subscriber (whatever its status: an
            operator re-adding someone who left must not re-subscribe them), or its
            mailbox has had its share of confirmation emails this hour.
    """
    existing = store.subscribers.by_email(signup.email)
    if existing is not None:
        raise ConsentError(f"{signup.email} is already a subscriber ({existing.status})")
    if not confirmed:
        return sign_up(config, store, signup, origin=origin, now=now)
    subscriber, _ = store.subscribers.add(
        signup.email,
        categories=signup.categories,
        topics=signup.topics,
        schedule=signup.schedule,
        locale=signup.locale,
        timezone=config.site.timezone,
        confirmed=True,
        now=now,
    )
    log.info("added", extra={"fields": {"subscriber": subscriber.id, "origin": origin}})
    return SignUp(subscriber, True, None)


def after_sign_up(stored: Subscriber, signup: Signup, created: bool) -> dict[str, Any]:
    """The columns a sign-up writes back: the same columns in every case, changed or not."""
    same: dict[str, Any] = {
        "status": stored.status,
        "categories": stored.categories,
        "schedule": stored.schedule,
        "locale": stored.locale,
        "topics": stored.topics,
        "key": stored.key,
    }
    if created or stored.status not in (SubscriberStatus.PENDING, SubscriberStatus.UNSUBSCRIBED):
        return same
    fresh = stored.status is SubscriberStatus.UNSUBSCRIBED  # a new sign-up, not the same one
    return {
        "status": SubscriberStatus.PENDING,
        "categories": signup.categories,
        "schedule": signup.schedule,
        "locale": signup.locale,
        "topics": signup.topics,
        "key": new_key() if fresh else stored.key,
    }


def confirm(store: Store, subscriber: Subscriber, now: datetime) -> tuple[Subscriber, Outcome]:
    """Pending becomes active; active stays so.

    Raises:
        ConsentError: the subscriber unsubscribed or bounced; only a new sign-up,
            confirmed by its owner, brings them back.
    """
    if subscriber.status is SubscriberStatus.ACTIVE:
        return subscriber, Outcome.ALREADY_ACTIVE
    if subscriber.status is not SubscriberStatus.PENDING:
        raise ConsentError(
            f"{subscriber.email} is {subscriber.status.value}: "
            "only a new sign-up, confirmed from their mailbox, brings them back"
        )
    updated = store.subscribers.update(
        subscriber.id, status=SubscriberStatus.ACTIVE, confirmed_at=now
    )
    log.info("confirmed", extra={"fields": {"subscriber": subscriber.id}})
    return updated or subscriber, Outcome.CONFIRMED


def resend(store: Store, email: str, *, origin: str, now: datetime) -> tuple[Outcome, int | None]:
    """Queue the pending subscriber's confirmation email again (the same sign-up, same link).

    Raises:
        ConsentError: no such subscriber, one who left, or a mailbox at its limit.
    """
    subscriber = known(store, email)
    if subscriber.status is SubscriberStatus.ACTIVE:
        return Outcome.ALREADY_ACTIVE, None
    if subscriber.status is not SubscriberStatus.PENDING:
        raise ConsentError(f"{subscriber.email} is {subscriber.status.value}: nothing to confirm")
    queued = store.confirmations.enqueue(
        subscriber.id,
        mailbox=mailbox_hash(subscriber.email),
        origin=origin,
        limit=SIGNUPS_PER_MAILBOX,
        now=now,
    )
    if queued is None:
        raise _limited(subscriber.email)
    return Outcome.QUEUED, queued


def change_preferences(
    store: Store,
    subscriber: Subscriber,
    *,
    categories: Sequence[str],
    schedule: str,
    locale: str,
    topics: Sequence[str],
) -> None:
    """A reader's own choices from the preferences page, already checked (``roster``)."""
    store.subscribers.update(
        subscriber.id, categories=categories, schedule=schedule, locale=locale, topics=topics
    )
    log.info("preferences changed", extra={"fields": {"subscriber": subscriber.id}})


def unsubscribe(store: Store, subscriber: Subscriber, *, origin: str) -> Outcome:
    """The subscriber receives nothing more; unsubscribing twice is not an error."""
    if subscriber.status is SubscriberStatus.UNSUBSCRIBED:
        return Outcome.ALREADY_UNSUBSCRIBED
    store.subscribers.update(subscriber.id, status=SubscriberStatus.UNSUBSCRIBED)
    log.info("unsubscribed", extra={"fields": {"subscriber": subscriber.id, "origin": origin}})
    return Outcome.UNSUBSCRIBED


def delete(store: Store, subscriber: Subscriber, *, origin: str) -> Outcome:
    """Erase the subscriber: the address, its link key (so every link names nobody) and
    its queued emails. What its deliveries counted stays, without the address."""
    if not store.subscribers.erase(subscriber.id):
        raise ConsentError(f"no subscriber {subscriber.email}")
    log.info("deleted", extra={"fields": {"subscriber": subscriber.id, "origin": origin}})
    return Outcome.DELETED


def known(store: Store, email: str) -> Subscriber:
    """The subscriber with this address; ConsentError if there is none."""
    subscriber = store.subscribers.by_email(email.strip())
    if subscriber is None:
        raise ConsentError(f"no subscriber {email}")
    return subscriber


def import_rows(
    config: Config, store: Store, rows: Iterable[Row], *, confirmed: bool, now: datetime
) -> ImportSummary:
    """Add the rows' new addresses; leave every address already here as it is.

    A row's status decides, where an export wrote one: unsubscribed and bounced
    are stored as such (kept), active with a confirmation time stays active.
    Otherwise ``confirmed`` (the operator has the consent) makes it active, and
    without it the row is pending and its confirmation email is queued.
    """
    summary = ImportSummary()
    for row in rows:
        existing = store.subscribers.by_email(row.signup.email)
        if existing is not None:
            summary.kept += existing.status in GONE
            summary.present += existing.status not in GONE
            continue
        _import_one(config, store, row, confirmed, now, summary)
    return summary


def _import_one(
    config: Config, store: Store, row: Row, confirmed: bool, now: datetime, summary: ImportSummary
) -> None:
    status = imported_status(row, confirmed)
    active = status is SubscriberStatus.ACTIVE
    subscriber, created = store.subscribers.insert(
        row.signup.email,
        categories=row.signup.categories,
        topics=row.signup.topics,
        schedule=row.signup.schedule,
        locale=row.signup.locale,
        timezone=config.site.timezone,
        status=status,
        created_at=row.created_at or now,
        confirmed_at=(row.confirmed_at or now) if active else row.confirmed_at,
    )
    if not created:  # added meanwhile by someone else
        summary.present += 1
    elif status in GONE:
        summary.kept += 1
    elif active:
        summary.active += 1
    else:
        summary.pending += 1
        try:
            _, queued = resend(store, subscriber.email, origin="import", now=now)
        except ConsentError:
            summary.limited += 1
        else:
            summary.queued += [queued] if queued is not None else []


def imported_status(row: Row, confirmed: bool) -> SubscriberStatus:
    """The status a new imported row gets (see :func:`import_rows`)."""
    if row.status in GONE:
        assert row.status is not None
        return row.status
    if row.status is SubscriberStatus.ACTIVE and row.confirmed_at is not None:
        return SubscriberStatus.ACTIVE  # an export's record of a confirmation
    return SubscriberStatus.ACTIVE if confirmed else SubscriberStatus.PENDING


def linked(store: Store, tokens: Tokens, purpose: Purpose, token: str) -> Subscriber:
    """The subscriber a link's token names.

    Raises:
        TokenError: the token is not genuine, has expired, or names nobody: a
            removed subscriber, a key replaced by a new sign-up, or an old
            id-signed link (see the module docstring) that is not theirs.
    """
    ref = tokens.read(purpose, token)
    subscriber: Subscriber | None
    if ref.key is not None:
        subscriber = store.subscribers.by_key(ref.key)
    elif purpose is Purpose.CONFIRM or ref.legacy_id is None:
        raise InvalidToken("an id-signed confirmation link from before link keys")
    else:
        subscriber = store.subscribers.get(ref.legacy_id)
        if subscriber is not None and ref.signed_at < subscriber.created_at.replace(microsecond=0):
            subscriber = None  # signed for whoever had this id before
    if subscriber is None:
        raise InvalidToken(f"this {purpose.value} link names no subscriber")
    return subscriber


def confirmable(subscriber: Subscriber) -> Subscriber:
    """``subscriber``, if a confirm link may show or confirm it: pending or active.

    Raises:
        InvalidToken: unsubscribed or bounced; an old confirmation link must not
            undo that.
    """
    if subscriber.status in GONE:
        raise InvalidToken(f"subscriber {subscriber.id} is {subscriber.status.value}")
    return subscriber


def _limited(email: str) -> ConsentError:
    count, window = SIGNUPS_PER_MAILBOX
    hours = int(window.total_seconds() // 3600)
    return ConsentError(
        f"{email}: too many confirmation emails to this mailbox "
        f"({count} in {hours} hour{'s' if hours != 1 else ''}); try again later"
    )
