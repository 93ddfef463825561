"""What a delivery report that came back does: find its delivery, apply it once, record it.

The one use-case behind ``feedsvc bounces process FILE…``, the service's mailbox job
and (later) the console:

==================  =============================================================
the report is       what happens
==================  =============================================================
permanent failure   the delivery becomes ``bounced`` and the subscriber's bounce
                    count goes up; at ``mail.bounce_limit`` the subscriber is
                    ``bounced`` and gets no more digests
complaint (ARF)     the subscriber is unsubscribed at once
transient failure   recorded; nothing changes
unmatched           recorded with its bytes and logged; never an error
not a report        recorded as ignored (an auto-reply, a success notice)
==================  =============================================================

A report is matched through its VERP token (signed: ``newsletter.verp``), else
through the Message-ID it quotes *and* the subscriber's address among its
recipients. Each report is one row keyed by its Message-ID (else its bytes),
inserted in the transaction that applies it (``store.bounces``), and a delivery
is bounced once whatever number of reports name it: nothing counts twice, across
processes and restarts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr

from feedsvc import metrics
from feedsvc.config import Config
from feedsvc.model import Delivery, ReportKind, ReportOutcome, ReportRecord, utcnow
from feedsvc.newsletter.bounces import BounceReport, parse_report
from feedsvc.newsletter.mailbox import Mailbox, open_mailbox
from feedsvc.newsletter.tokens import secret_key
from feedsvc.newsletter.verp import ReturnPath, digest_key, token_delivery
from feedsvc.store import Store
from feedsvc.store.bounces import Effect

log = logging.getLogger("feedsvc.bounces")

MAILBOX_BATCH = 500  # messages read per visit: a flood waits for the next one


@dataclass(frozen=True, slots=True)
class Match:
    """The delivery a report is about, how it was found, or why none was."""

    delivery: Delivery | None
    by: str | None = None  # "verp" | "message_id"
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Processed:
    """One report processed: what it said, what it matched, what it did (None: read
    before, so nothing happened this time)."""

    origin: str
    report: BounceReport
    match: Match
    outcome: ReportOutcome | None


def effect_of(kind: ReportKind, match: Match) -> Effect:
    """What a report of ``kind`` does once matched (or not)."""
    if kind is ReportKind.OTHER:
        return Effect.IGNORE
    if match.delivery is None:
        return Effect.KEEP
    if kind is ReportKind.PERMANENT:
        return Effect.BOUNCE
    if kind is ReportKind.COMPLAINT:
        return Effect.UNSUBSCRIBE
    return Effect.RECORD


class ReportProcessor:
    """Processes reports for one configuration and store."""

    def __init__(
        self,
        config: Config,
        store: Store,
        return_path: ReturnPath,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self.store = store
        self.return_path = return_path
        self.clock = clock
        # The domain of digests' Message-IDs (deliver.message_id): newsletter.from's.
        self.digest_domain = parseaddr(config.newsletter.from_)[1].rpartition("@")[2]

    @classmethod
    def from_config(cls, config: Config, store: Store) -> ReportProcessor:
        """Raises ``ConfigError`` when the site's secret key is unusable."""
        return cls(config, store, ReturnPath.from_config(config, secret_key(config)))

    def process(self, data: bytes, origin: str) -> Processed:
        """Parse, match and apply one report (any bytes: this never fails on content)."""
        report = parse_report(data, local_part=self.return_path.local)
        if self.store.bounces.seen(report.key):
            before = Match(None, reason="processed before")
            return self._done(Processed(origin, report, before, None))
        match = self.match(report)
        effect = effect_of(report.kind, match)
        record = self._record(report, match, origin, data if effect is Effect.KEEP else None)
        outcome = self.store.bounces.apply(
            record, effect, bounce_limit=self.config.mail.bounce_limit
        )
        return self._done(Processed(origin, report, match, outcome))

    def process_mailbox(self, mailbox: Mailbox, limit: int = MAILBOX_BATCH) -> list[Processed]:
        """Every unread message of ``mailbox``, each marked once its row is committed."""
        processed = []
        for letter in mailbox.unread(limit):
            processed.append(self.process(letter.data, letter.origin))
            mailbox.done(letter)
        return processed

    def match(self, report: BounceReport) -> Match:
        """The delivery ``report`` is about: through its VERP token, else its Message-ID."""
        reasons = []
        if report.verp_token is not None:
            found = self._by_token(report.verp_token)
            if found.delivery is not None:
                return found
            reasons.append(found.reason)
        if report.original_message_id is not None:
            found = self._by_message_id(report.original_message_id, report.recipients)
            if found.delivery is not None:
                return found
            reasons.append(found.reason)
        reason = "; ".join(r for r in reasons if r) or "names no return path or digest of ours"
        return Match(None, reason=reason)

    def _by_token(self, token: str) -> Match:
        delivery_id = token_delivery(self.return_path, token)
        if delivery_id is None:
            return Match(None, reason=f"return path token {token[:40]!r} is not one feedsvc signed")
        delivery = self.store.bounces.delivery(delivery_id)
        if delivery is None:
            return Match(None, reason=f"delivery {delivery_id} no longer exists")
        return Match(delivery, "verp")

    def _by_message_id(self, message_id: str, recipients: tuple[str, ...]) -> Match:
        key = digest_key(message_id, self.digest_domain)
        if key is None:
            return Match(None, reason=f"{message_id[:120]} is not a digest of ours")
        delivery = self.store.bounces.delivery_for(key.subscriber_id, key.schedule, key.period)
        if delivery is None:
            return Match(None, reason=f"no delivery has the Message-ID {message_id[:120]}")
        address = self.store.bounces.recipient(delivery.subscriber_id) or ""
        if address.casefold() not in {r.casefold() for r in recipients}:
            # Message-IDs can be guessed; the address is what a forger would not know.
            return Match(None, reason=f"names delivery {delivery.id} but not its recipient")
        return Match(delivery, "message_id")

    def _record(
        self, report: BounceReport, match: Match, origin: str, raw: bytes | None
    ) -> ReportRecord:
        delivery = match.delivery
        return ReportRecord(
            report_key=report.key,
            sha256=report.sha256,
            origin=origin,
            received_at=self.clock(),
            kind=report.kind,
            recipients=report.recipients,
            message_id=report.message_id,
            original_message_id=report.original_message_id,
            delivery_id=delivery.id if delivery else None,
            subscriber_id=delivery.subscriber_id if delivery else None,
            matched_by=match.by,
            detail=report.detail if delivery else match.reason,
            raw=raw,
        )

    def _done(self, processed: Processed) -> Processed:
        delivery = processed.match.delivery
        outcome = processed.outcome.value if processed.outcome else "already_processed"
        fields: dict[str, object] = {
            "origin": processed.origin,
            "kind": processed.report.kind.value,
            "outcome": outcome,
        }
        if delivery is not None:
            fields |= {"delivery": delivery.id, "subscriber": delivery.subscriber_id}
        if processed.report.detail:
            fields["detail"] = processed.report.detail
        if processed.outcome is ReportOutcome.UNMATCHED:
            fields["reason"] = processed.match.reason
            log.warning("report unmatched", extra={"fields": fields})
        else:
            log.info("report", extra={"fields": fields})
        metrics.count_report(outcome)
        return processed


def read_mailbox(config: Config, store: Store) -> list[Processed]:
    """Read ``mail.bounces.mailbox`` once: the service's job and ``feedsvc bounces fetch``.

    Raises:
        MailboxError: the mailbox cannot be reached or read.
        ConfigError: its password variable is unset, or the secret key is unusable.
    """
    processor = ReportProcessor.from_config(config, store)
    mailbox = open_mailbox(config)
    try:
        return processor.process_mailbox(mailbox)
    finally:
        mailbox.close()
