"""Plain data passed between the stages: fetch -> parse -> store -> classify -> publish.

Every datetime here is timezone-aware UTC. Nothing in this module does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


def utcnow() -> datetime:
    """The current time, aware UTC: the one clock the I/O edges read (the middle takes ``now``)."""
    return datetime.now(UTC)


class SourceStatus(StrEnum):
    """A source's health, as ``feedsvc sources list`` shows it."""

    NEW = "new"  # never polled yet
    OK = "ok"
    ERROR = "error"  # the last poll failed; retried at the normal interval
    BACKOFF = "backoff"  # repeated failures or Retry-After: retried later than usual
    RETIRED = "retired"  # 410 Gone: not polled again unless forced or its URL changes
    PAUSED = "paused"  # an operator paused it (run-time state, not config.yaml): never claimed


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one conditional GET produced (errors are raised as ``FetchError``).

    ``body`` is None for 304 Not Modified. ``permanent_url`` is set when every hop
    that led to ``url`` was a permanent redirect (301/308): the source's stored URL
    moves there.
    """

    url: str
    status: int
    body: bytes | None
    headers: Mapping[str, str]
    etag: str | None = None
    last_modified: str | None = None
    permanent_url: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.body is None


@dataclass(frozen=True, slots=True)
class Enclosure:
    url: str
    type: str = ""
    length: int | None = None


@dataclass(frozen=True, slots=True)
class ParsedEntry:
    """One entry of a parsed feed: NFC text, absolute links, sanitized HTML.

    ``published`` is None when the feed gave no usable date; ``date_flag`` then
    says why (``missing``, ``unparseable``, ``future``) and the store uses the
    time the entry was first seen instead.
    """

    identity: str
    title: str
    link: str | None = None
    guid: str | None = None
    guid_is_permalink: bool = False
    summary: str = ""  # plain text
    content: str = ""  # sanitized HTML
    author: str | None = None
    categories: tuple[str, ...] = ()
    published: datetime | None = None
    updated: datetime | None = None
    date_flag: str | None = None
    enclosures: tuple[Enclosure, ...] = ()
    image: str | None = None
    content_hash: str = ""  # changes when a reader would see a different entry


@dataclass(frozen=True, slots=True)
class ItemKey:
    """One item of a feed document as the store remembers it: the hash of its bytes (and of
    what they are read against) and the identity of the entry they gave."""

    key: str
    identity: str


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A parsed feed. When it was parsed against the item keys already stored, ``entries``
    holds only what the new and edited items gave (the others are stored as they were)
    and ``items`` keys every item whose entry is stored; ``items`` is None when the
    document could not be split into items (the store then forgets the source's keys)."""

    title: str | None
    link: str | None
    entries: tuple[ParsedEntry, ...]
    language: str | None = None
    warning: str | None = None  # a recoverable problem (malformed but readable XML)
    left_out: int = 0  # entries after the first fetch.max_entries, not parsed
    items: tuple[ItemKey, ...] | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """A stored entry, as the publish and newsletter stages read it.

    ``categories`` are the source's own terms (``<category>``), not ours.
    ``first_seen`` is when feedsvc stored it: digests select on it, because
    publishers' dates are often wrong. ``backlog`` marks old news from a newly
    added source, which no digest treats as new.
    """

    id: int
    source_id: str
    identity: str
    title: str
    first_seen: datetime
    link: str | None = None
    guid: str | None = None
    guid_is_permalink: bool = False
    summary: str = ""
    content: str = ""
    author: str | None = None
    categories: tuple[str, ...] = ()
    enclosures: tuple[Enclosure, ...] = ()
    image: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    changed: datetime | None = None
    revision: int = 0
    backlog: bool = False

    @property
    def date(self) -> datetime:
        """The date to show and sort by: the publisher's, else when we first saw it."""
        return self.published or self.first_seen


@dataclass(frozen=True, slots=True)
class Filed:
    """A stored entry with the ids of the categories it is filed under."""

    entry: Entry
    categories: frozenset[str]


@dataclass(frozen=True, slots=True)
class Fragment:
    """One entry rendered for the feeds, each format's part as it sits in a document
    (``publish.fragments``).

    Cached per entry, valid while the entry is at ``revision`` and the feed's
    context key is the one it was stored under.
    """

    entry_id: int
    revision: int
    item_id: str  # breaks ties between equal dates, as ``publish.items.newest_first`` does
    published: datetime
    updated: datetime  # a feed is as recent as its most recently updated entry
    bodies: Mapping[str, bytes]  # by format: rss, atom, json (those rendered)


@dataclass(frozen=True, slots=True)
class Source:
    """A source as stored: the configured URL and where it lives now."""

    id: str
    config_url: str
    url: str
    title: str | None = None
    status: SourceStatus = SourceStatus.NEW
    last_error: str | None = None
    error_count: int = 0
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    first_polled_at: datetime | None = None
    last_polled_at: datetime | None = None
    next_poll_at: datetime | None = None
    retry_after: datetime | None = None
    warning: str | None = None
    active: bool = True
    entries: int = 0
    paused_at: datetime | None = None  # ingest.operate: claims skip it while set
    paused_by: str | None = None


@dataclass(frozen=True, slots=True)
class StoreOutcome:
    """What storing one parsed feed changed."""

    new: int = 0
    updated: int = 0
    new_ids: tuple[int, ...] = ()
    updated_ids: tuple[int, ...] = ()
    backlog: int = 0  # of the new ones, how many are old news from a newly added source


@dataclass(frozen=True, slots=True)
class PollResult:
    """The outcome of polling one source; ``error`` is a one-line message or None."""

    source_id: str
    status: str  # updated | no_change | not_modified (304) | same_body | error | retired
    new: int = 0
    updated: int = 0
    error: str | None = None
    warning: str | None = None
    entry_ids: tuple[int, ...] = field(default=())
    backlog: int = 0  # of the new entries, those stored as backlog (never news)
    articles: int = 0  # entries whose content is now their article page's (full text)
    article_failures: int = 0  # pages that gave nothing: those entries keep the feed's lead


@dataclass(frozen=True, slots=True)
class ArticleDue:
    """A stored entry whose article page is still to be fetched (``full_text: true``)."""

    entry_id: int
    link: str
    content: str  # what the feed gave: kept unless the page gives more


@dataclass(frozen=True, slots=True)
class Article:
    """What an entry's page gave: sanitized article HTML, or why the feed's lead stays."""

    entry_id: int
    link: str  # the link fetched: an entry whose link changed since is left alone
    content: str | None  # None: nothing usable, see ``error``
    error: str | None = None


class SubscriberStatus(StrEnum):
    PENDING = "pending"  # signed up, not confirmed: never gets a digest
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"  # too many permanent delivery failures


@dataclass(frozen=True, slots=True)
class Subscriber:
    id: int
    email: str  # normalized by email-validator (domain lower-cased); unique caseless
    status: SubscriberStatus
    categories: tuple[str, ...]
    schedule: str
    locale: str  # "vi" or "en"
    timezone: str
    created_at: datetime
    confirmed_at: datetime | None = None
    bounce_count: int = 0
    key: str = ""  # what its links name: random, never reused (newsletter.tokens)
    topics: tuple[str, ...] = ()  # followed by email, as typed (newsletter.topics)


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A queued confirmation email, claimed for sending (store.confirmations)."""

    id: int
    subscriber: Subscriber
    attempts: int  # including this one


class DeliveryState(StrEnum):
    """pending -> sending -> sent | failed | unknown; or pending -> empty (nothing new);
    sent | unknown -> bounced when a delivery report comes back later."""

    PENDING = "pending"
    SENDING = "sending"  # handed to the mail backend; a crash here means send again
    SENT = "sent"
    FAILED = "failed"  # permanent (5xx) or retries exhausted
    UNKNOWN = "unknown"  # the connection dropped after the server accepted the data
    EMPTY = "empty"  # nothing new for this subscriber: no email
    BOUNCED = "bounced"  # accepted, then a report said it failed for good


@dataclass(frozen=True, slots=True)
class Delivery:
    """One digest for one subscriber and one period of a schedule (unique in the store).

    ``since``/``until`` fix the window of first-seen times it covers, so sending
    it again after a crash gives the same digest with the same ``message_id``.
    """

    id: int
    subscriber_id: int
    schedule: str
    period: datetime  # the scheduled time this digest is for
    since: datetime
    until: datetime
    state: DeliveryState
    message_id: str
    attempts: int = 0
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """How one delivery ended, as the sender records it."""

    delivery_id: int
    state: DeliveryState
    at: datetime
    error: str | None = None
    edition: str | None = None  # the edition a sent digest carried


@dataclass(frozen=True, slots=True)
class DeliveryHistory:
    """What one subscriber's deliveries of one schedule so far say about the next.

    ``delivered_until`` is where the last digest that went out (or had nothing
    to send) ended; ``first_since`` where the first one, of any state, began.
    """

    open: bool  # one is still pending or sending
    delivered_until: datetime | None
    first_since: datetime | None
    open_until: datetime | None = None  # where the open one ends


TOPICS_SECTION = "_topics"
"""The ``category_id`` of a digest's "Your topics" section: no category id starts with ``_``."""


@dataclass(frozen=True, slots=True)
class DigestSection:
    category_id: str
    title: str
    entries: tuple[Entry, ...]
    more: int = 0  # new entries beyond newsletter.max_items_per_category
    rest: tuple[Entry, ...] = ()  # those entries, for the edition's web page


@dataclass(frozen=True, slots=True)
class StoryRef:
    """Another entry as a story's decorations show it: the entry, and its source's name."""

    entry: Entry
    source: str


@dataclass(frozen=True, slots=True)
class DigestStory:
    """What a digest shows around one of its entries (``newsletter.select``, ``stories``).

    A series with several parts in one section is shown together in part order:
    the first part has ``parts`` (the part numbers shown, "Bài 1 → Bài 2"), the
    others ``continues`` (the first part's entry id) and sit right after it.
    """

    part: int | None = None
    parts: tuple[int, ...] = ()
    continues: int | None = None
    related: tuple[StoryRef, ...] = ()
    also_reported_by: tuple[StoryRef, ...] = ()


@dataclass(frozen=True, slots=True)
class Digest:
    """What one subscriber gets: new entries grouped by category in config order, and
    what surrounds each entry's story (by entry id; absent: nothing)."""

    sections: tuple[DigestSection, ...]
    since: datetime
    until: datetime
    stories: Mapping[int, DigestStory] = field(default_factory=dict, hash=False)

    @property
    def count(self) -> int:
        return sum(len(section.entries) + section.more for section in self.sections)

    @property
    def empty(self) -> bool:
        return not self.sections


@dataclass(frozen=True, slots=True)
class EditionSection:
    category_id: str
    entry_ids: tuple[int, ...]
    more: int = 0


@dataclass(frozen=True, slots=True)
class Edition:
    """One edition of a schedule's digest: what every reader of one variant shared.

    A period has one edition per distinct (language, categories, stories); it holds
    nothing personal, so its web page can be public. ``id`` is derived from that
    content (``newsletter.edition``), so every process names an edition alike.
    """

    id: str
    schedule: str
    period: datetime
    locale: str
    categories: tuple[str, ...]
    sections: tuple[EditionSection, ...]
    created_at: datetime | None = None

    @property
    def count(self) -> int:
        return sum(len(section.entry_ids) + section.more for section in self.sections)


class IncidentKind(StrEnum):
    """Why a source needs an operator."""

    FAILING = "failing"  # its polls have failed for longer than alerts.after
    RETIRED = "retired"  # 410 Gone: feedsvc stopped polling it
    QUIET = "quiet"  # polls work, but nothing new for far longer than its rhythm


@dataclass(frozen=True, slots=True)
class Incident:
    """One problem of one source, from when it began until it ends (a row in the store).

    ``opened_at`` is when it became worth an alert (a failure only after
    ``alerts.after``); before that it is merely being watched. ``notified_at`` and
    ``recovery_notified_at`` say which emails went out; ``recovered`` is False
    when it ended without the source getting better (removed, or a new problem).
    """

    id: int
    source_id: str
    kind: IncidentKind
    since: datetime
    detected_at: datetime
    last_error: str | None = None
    opened_at: datetime | None = None
    notified_at: datetime | None = None
    resolved_at: datetime | None = None
    recovered: bool = False
    recovery_notified_at: datetime | None = None


class ReportKind(StrEnum):
    """What a delivery report that came back says (``newsletter.bounces``)."""

    PERMANENT = "permanent"  # a DSN: failed for good (5.x.x)
    TRANSIENT = "transient"  # a DSN: delayed, or failed for now (4.x.x)
    COMPLAINT = "complaint"  # an ARF abuse report: the reader marked it as spam
    OTHER = "other"  # neither: a success notice, an auto-reply, something unreadable


class ReportOutcome(StrEnum):
    """What processing a report did, as recorded with it."""

    BOUNCED = "bounced"  # the delivery is bounced; the subscriber's count went up
    SUBSCRIBER_BOUNCED = "subscriber_bounced"  # … and reached mail.bounce_limit
    ALREADY_BOUNCED = "already_bounced"  # an earlier report bounced that delivery
    NOT_SENT = "not_sent"  # the delivery it names is not sent (nothing to bounce)
    UNSUBSCRIBED = "unsubscribed"  # a complaint: the subscriber is unsubscribed
    ALREADY_UNSUBSCRIBED = "already_unsubscribed"
    RECORDED = "recorded"  # a transient failure: noted, nothing changed
    UNMATCHED = "unmatched"  # no delivery of ours: kept for a person to look at
    IGNORED = "ignored"  # not a failure or a complaint


@dataclass(frozen=True, slots=True)
class ReportRecord:
    """A processed report, as stored (one row per report, so none counts twice)."""

    report_key: str
    sha256: str
    origin: str
    received_at: datetime
    kind: ReportKind
    recipients: tuple[str, ...] = ()
    message_id: str | None = None
    original_message_id: str | None = None
    delivery_id: int | None = None
    subscriber_id: int | None = None
    matched_by: str | None = None  # "verp" | "message_id"
    detail: str | None = None
    raw: bytes | None = None  # kept when it matched nothing


class NoticeKind(StrEnum):
    """The two emails an incident may send."""

    OPENED = "opened"  # the problem became worth an alert
    RECOVERED = "recovered"  # the source got better after that alert


@dataclass(frozen=True, slots=True)
class NewIncident:
    """A source's new problem; ``opened`` when it is worth an alert at once."""

    source_id: str
    kind: IncidentKind
    since: datetime
    error: str | None
    opened: bool


@dataclass(frozen=True, slots=True)
class OpenIncident:
    """A watched failure has lasted ``alerts.after``: worth an alert now."""

    incident_id: int


@dataclass(frozen=True, slots=True)
class ResolveIncident:
    incident_id: int
    recovered: bool  # False: removed from config.yaml, or replaced by another problem


@dataclass(frozen=True, slots=True)
class NoteIncident:
    """The source's last error changed: the alert shows the newest."""

    incident_id: int
    error: str | None


IncidentChange = NewIncident | OpenIncident | ResolveIncident | NoteIncident
