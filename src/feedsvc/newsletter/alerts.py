"""Alert emails to the operators (``alerts.to``) when a source fails or goes quiet, and
when it recovers: the I/O shell around ``ingest.alerts``.

``Alerter.evaluate`` runs after every poll and each minute in ``feedsvc run``: it
reads the sources and incidents, lets ``ingest.alerts.decide`` say what changed,
records that (``store.incidents``), then sends the notices owed. Each notice is
claimed in the database first, so any number of processes send each email once.
A notice whose sending failed for now (a 4xx, a mail server away) is given back
and sent by a later evaluation.

The email is plain text, in the site's language and then the other (operators
share one list), through the configured mail backend.
"""

from __future__ import annotations

import asyncio
import email.policy
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime as rfc5322_date
from email.utils import parseaddr
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from jinja2 import Environment, PackageLoader, Template

from feedsvc import i18n
from feedsvc.config import Config
from feedsvc.ingest.alerts import HISTORY, Policy, decide, notice_due, silent
from feedsvc.lease import process_owner
from feedsvc.model import (
    Incident,
    IncidentChange,
    IncidentKind,
    NewIncident,
    NoticeKind,
    ResolveIncident,
    Source,
    SourceStatus,
    utcnow,
)
from feedsvc.newsletter.mail import Mailer, SendStatus
from feedsvc.store import Store

log = logging.getLogger("feedsvc.alerts")

NOTICE_LEASE = timedelta(minutes=10)  # a claimer that died: another sends after this
QUIET_EVERY = timedelta(minutes=10)  # how often the history of new entries is read

_BABEL = {"vi": "vi", "en": "en_GB"}
_SUBJECTS = {
    (NoticeKind.OPENED, IncidentKind.FAILING): "[feedsvc] Source {name} is failing",
    (NoticeKind.OPENED, IncidentKind.RETIRED): "[feedsvc] Source {name} is gone (410)",
    (NoticeKind.OPENED, IncidentKind.QUIET): "[feedsvc] Source {name} has stopped updating",
}
_RECOVERED_SUBJECT = "[feedsvc] Source {name} works again"
_HEADLINES = {
    (NoticeKind.OPENED, IncidentKind.FAILING): "Source {name} has been failing since {since}.",
    (NoticeKind.OPENED, IncidentKind.RETIRED): (
        "Source {name} answered 410 Gone: feedsvc no longer polls it."
    ),
    (NoticeKind.OPENED, IncidentKind.QUIET): (
        "Source {name} has published nothing new since {since}, far longer than usual."
    ),
}
_RECOVERED_HEADLINE = "Source {name} works again (the problem began {since})."
_ADVICE = {
    IncidentKind.FAILING: (
        "feedsvc keeps trying, less often while it fails. "
        "Check the address and the publisher's site."
    ),
    IncidentKind.RETIRED: (
        "feedsvc will not poll it again until its URL changes in config.yaml "
        "(or feedsvc poll --force)."
    ),
    IncidentKind.QUIET: (
        "Its polls work, but nothing new has come for far longer than its usual rhythm. "
        "The feed may have moved or stopped."
    ),
}
_RECOVERED_ADVICE = "Nothing to do."


class Alerter:
    """Evaluates the sources and sends the notices owed, for one process."""

    def __init__(
        self,
        config: Config,
        store: Store,
        mailer: Mailer,
        *,
        owner: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        quiet_every: timedelta = QUIET_EVERY,
    ) -> None:
        self.config = config
        self.store = store
        self.mailer = mailer
        self.owner = owner or process_owner()
        self.clock = clock
        self.policy = Policy.from_config(config.alerts)
        self.quiet_every = quiet_every
        self._arrivals_read: datetime | None = None
        # The last check found every source healthy and no incident open: a poll whose
        # every result succeeded cannot open or resolve one (``needs_check``).
        self.all_well = False

    async def evaluate(self) -> int:
        """Check every source, then send what is owed; return how many notices went."""
        await asyncio.to_thread(self.check)
        return await self.notify()

    def check(self) -> list[IncidentChange]:
        """Record what changed since the last evaluation (in the store)."""
        now = self.clock()
        sources = self.store.incidents.sources()
        unresolved = self.store.incidents.unresolved()
        changes = decide(sources, unresolved, self._arrivals(sources, now), self.policy, now)
        self.store.incidents.apply(changes, now)
        for change in changes:
            _log_change(change)
        self.all_well = not unresolved and not changes and all(_healthy(s) for s in sources)
        return changes

    def needs_check(self, failed: bool) -> bool:
        """Whether a poll (``failed``: any of its sources failed) may have changed an
        incident: not when the last check found all well and every poll succeeded.
        Time alone (a quiet source) is left to the minute's evaluation."""
        return failed or not self.all_well

    async def notify(self) -> int:
        """Send each notice owed that this process can claim."""
        if not self.config.alerts.to:
            return 0  # incidents are still recorded (/status, /metrics)
        candidates = await asyncio.to_thread(self.store.incidents.due_notices, self.clock())
        sent = 0
        for incident in candidates:
            kind = notice_due(incident)
            if kind is None:
                continue
            claimed = await asyncio.to_thread(
                self.store.incidents.claim_notice,
                incident.id,
                kind,
                self.owner,
                self.clock(),
                NOTICE_LEASE,
            )
            if not claimed:
                continue  # another process is sending it, or has
            delivered = await self._send(incident, kind)
            await asyncio.to_thread(
                self.store.incidents.finish_notice,
                incident.id,
                kind,
                self.owner,
                self.clock(),
                sent=delivered,
            )
            sent += delivered
        return sent

    def _arrivals(self, sources: list[Source], now: datetime) -> dict[str, list[datetime]] | None:
        """The history of new entries of the sources silent for ``quiet_min`` at least,
        read at most every ``quiet_every`` (None between): the one costly read (about a
        second on 1.8 million entries), and a quiet source is measured in days."""
        if self._arrivals_read is not None and now - self._arrivals_read < self.quiet_every:
            return None
        self._arrivals_read = now
        published = self.store.incidents.published_since(now - self.policy.quiet_min)
        return self.store.incidents.arrivals(silent(sources, published), HISTORY)

    async def _send(self, incident: Incident, kind: NoticeKind) -> bool:
        found = await asyncio.to_thread(self.store.sources.list, [incident.source_id])
        source = found[0] if found else None
        data = compose_alert(self.config, incident, source, kind, self.clock())
        sender = parseaddr(self.config.newsletter.from_)[1]
        retry = False
        for n, recipient in enumerate(self.config.alerts.to):
            name = f"alert-{incident.id}-{kind.value}-{n}"
            result = await self.mailer.send(sender, recipient, data, name=name)
            fields = {
                "incident": incident.id,
                "source": incident.source_id,
                "notice": kind.value,
                "to": recipient,
                "status": result.status.value,
            }
            level = logging.INFO if result.status is SendStatus.SENT else logging.WARNING
            log.log(level, "alert sent", extra={"fields": fields | {"detail": result.detail}})
            retry = retry or result.status is SendStatus.RETRY
        return not retry


def _healthy(source: Source) -> bool:
    return source.error_count == 0 and source.status in (SourceStatus.OK, SourceStatus.NEW)


def compose_alert(
    config: Config, incident: Incident, source: Source | None, kind: NoticeKind, now: datetime
) -> bytes:
    """The notice as RFC 5322 bytes: a subject in the site's language, both languages in
    the body. The Message-ID is the incident's, so a resent copy is the same message."""
    first = config.site.language
    languages = [first] + [code for code in i18n.LOCALES if code != first]
    name = _source_name(config, incident.source_id, source)
    parts = [_body(config, incident, source, kind, code, name) for code in languages]
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = config.newsletter.from_
    message["To"] = ", ".join(config.alerts.to)
    message["Subject"] = _one_line(
        i18n.translator(first)(_subject(incident, kind)).format(name=name)
    )
    message["Date"] = rfc5322_date(now)
    domain = parseaddr(config.newsletter.from_)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = f"<alert.{incident.id}.{kind.value}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies back
    message.set_content("\n\n".join(parts))
    return message.as_bytes()


def _body(
    config: Config,
    incident: Incident,
    source: Source | None,
    kind: NoticeKind,
    code: str,
    name: str,
) -> str:
    _ = i18n.translator(code)
    since = _when(incident.since, config.site.timezone, code)
    recovered = kind is NoticeKind.RECOVERED
    headline = _RECOVERED_HEADLINE if recovered else _HEADLINES[(kind, incident.kind)]
    advice = _RECOVERED_ADVICE if recovered else _ADVICE[incident.kind]
    failing = incident.kind is IncidentKind.FAILING and not recovered
    return _template().render(
        _=_,
        headline=_(headline).format(name=name, since=since),
        name=name,
        source_id=incident.source_id,
        url=source.url if source else None,
        since=since,
        error=None if recovered else incident.last_error,
        failures=source.error_count if source and failing else None,
        advice=_(advice),
        console_url=f"{config.site.base_url.rstrip('/')}/admin/sources",
    )


def _subject(incident: Incident, kind: NoticeKind) -> str:
    return _RECOVERED_SUBJECT if kind is NoticeKind.RECOVERED else _SUBJECTS[(kind, incident.kind)]


def _source_name(config: Config, source_id: str, source: Source | None) -> str:
    configured = next((s.title for s in config.sources if s.id == source_id), None)
    return _one_line(configured or (source.title if source else None) or source_id)


def _when(moment: datetime, timezone: str, code: str) -> str:
    text = format_datetime(
        moment, "HH:mm, d/M/yyyy", tzinfo=ZoneInfo(timezone), locale=_BABEL[code]
    )
    return f"{text} ({timezone})"


def _one_line(text: str) -> str:
    """No line breaks in a header (a feed's title must not inject one)."""
    return " ".join(text.split())


def _template() -> Template:
    return _ENVIRONMENT.get_template("email/alert.txt")


_ENVIRONMENT = Environment(
    loader=PackageLoader("feedsvc", "templates"),
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def _log_change(change: IncidentChange) -> None:
    fields: dict[str, object]
    if isinstance(change, NewIncident):
        fields = {"source": change.source_id, "kind": change.kind.value, "opened": change.opened}
        log.warning("incident", extra={"fields": fields})
    elif isinstance(change, ResolveIncident):
        fields = {"incident": change.incident_id, "recovered": change.recovered}
        log.info("incident resolved", extra={"fields": fields})
    else:
        log.info(type(change).__name__, extra={"fields": {"incident": change.incident_id}})
