"""Prometheus metrics of one feedsvc process, and whether its scheduler is running.

Counters and histograms live in one module-level :data:`REGISTRY`: they count
what *this process* did, so they are process-wide by nature, and a private
registry keeps prometheus-client's default process and platform collectors out
(and lets tests build several apps without registering anything twice). The
hot paths pay one pre-labelled ``inc()`` or ``observe()``: every label value is
bound once at import, so no series is created while polling or sending.

What the *database* says (sources by status, the last poll) is read when
Prometheus scrapes, by :func:`exposition`. With several processes sharing one
PostgreSQL, sum the counters over the processes; the database gauges are the same
shared truth in each (take ``max``, not ``sum``).

=========================================  =========  ============================================
metric                                     type       labels and meaning
=========================================  =========  ============================================
``feedsvc_polls_total``                    counter    ``status``: updated, no_change, not_modified
                                                      (304), same_body, error, retired (410)
``feedsvc_fetch_duration_seconds``         histogram  one source's conditional GET, redirects,
                                                      failures and timeouts included, and the
                                                      wait for a slot at a busy host
                                                      (``FetchPolicy.per_host``)
``feedsvc_entries_stored_total``           counter    ``kind``: new, updated (an edit in place)
``feedsvc_feeds_regenerated_total``        counter    feed documents whose bytes changed and were
                                                      stored (one per category and format)
``feedsvc_deliveries_total``               counter    ``state``: sent, failed, unknown, empty, and
                                                      retry (put back to pending after a 4xx)
``feedsvc_bounce_reports_total``           counter    ``outcome``: what a delivery report read later
                                                      did (bounced, unsubscribed, unmatched…;
                                                      already_processed: read before)
``feedsvc_smtp_send_duration_seconds``     histogram  one message's SMTP conversation, from
                                                      connecting (when a connection is opened)
                                                      to the reply to its data; not the wait for
                                                      a free connection or the rate limit
``feedsvc_scheduler_running``              gauge      1 while ``feedsvc run``'s scheduler runs
``feedsvc_database_up``                    gauge      1 when the scrape could read the database
``feedsvc_sources``                        gauge      ``status``: new, ok, error, backoff, retired;
                                                      active sources only, read at scrape time
``feedsvc_incidents_open``                 gauge      ``kind``: failing, retired, quiet; sources
                                                      with an open incident (``ingest.alerts``),
                                                      read at scrape time
``feedsvc_last_poll_timestamp_seconds``    gauge      the newest ``last_polled_at`` of any source
                                                      (absent before the first poll)
=========================================  =========  ============================================

The service calls :func:`scheduler_started` and :func:`scheduler_stopped`
around its scheduler; ``/healthz`` reads :func:`scheduler_running`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from feedsvc.model import IncidentKind, PollResult, SourceStatus

if TYPE_CHECKING:
    from feedsvc.store import Store

log = logging.getLogger("feedsvc.metrics")

REGISTRY = CollectorRegistry()

POLL_STATUSES = ("updated", "no_change", "not_modified", "same_body", "error", "retired")
DELIVERY_STATES = ("sent", "failed", "unknown", "empty", "retry")

_POLLS = Counter("feedsvc_polls", "Source polls by outcome.", ["status"], registry=REGISTRY)
_ENTRIES = Counter(
    "feedsvc_entries_stored", "Entries stored, new or edited.", ["kind"], registry=REGISTRY
)
_DELIVERIES = Counter(
    "feedsvc_deliveries",
    "Digest deliveries by the state they were left in.",
    ["state"],
    registry=REGISTRY,
)
_REPORTS = Counter(
    "feedsvc_bounce_reports",
    "Delivery reports (bounces, complaints) processed, by outcome.",
    ["outcome"],
    registry=REGISTRY,
)
FEEDS_REGENERATED = Counter(
    "feedsvc_feeds_regenerated",
    "Feed documents regenerated with new content.",
    registry=REGISTRY,
)
FETCH_SECONDS = Histogram(
    "feedsvc_fetch_duration_seconds",
    "Time to fetch one source (conditional GET, redirects followed).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60),
    registry=REGISTRY,
)
SMTP_SECONDS = Histogram(
    "feedsvc_smtp_send_duration_seconds",
    "Time of one SMTP transaction, connecting included when a connection was opened.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
_SCHEDULER = Gauge(
    "feedsvc_scheduler_running", "1 while this process's scheduler runs.", registry=REGISTRY
)

# Bound once: a hot path then costs a dict lookup and a locked add, and every series
# exists from the first scrape (rate() needs the zero before the first event).
_POLLS_BY_STATUS = {status: _POLLS.labels(status=status) for status in POLL_STATUSES}
_NEW_ENTRIES = _ENTRIES.labels(kind="new")
_UPDATED_ENTRIES = _ENTRIES.labels(kind="updated")
_DELIVERIES_BY_STATE = {state: _DELIVERIES.labels(state=state) for state in DELIVERY_STATES}


def count_poll(result: PollResult) -> None:
    """Count one source's poll and the entries it stored."""
    child = _POLLS_BY_STATUS.get(result.status) or _POLLS.labels(status=result.status)
    child.inc()
    if result.new:
        _NEW_ENTRIES.inc(result.new)
    if result.updated:
        _UPDATED_ENTRIES.inc(result.updated)


def count_delivery(state: str) -> None:
    """Count one delivery attempt by the state it left the row in (``retry``: pending again)."""
    child = _DELIVERIES_BY_STATE.get(state) or _DELIVERIES.labels(state=state)
    child.inc()


def count_report(outcome: str) -> None:
    """Count one delivery report read from the bounce mailbox or a file."""
    _REPORTS.labels(outcome=outcome).inc()


# -- the scheduler flag ----------------------------------------------------------------


@dataclass(slots=True)
class ServiceState:
    """What this process is doing that the database cannot tell: is its scheduler on?"""

    scheduler_running: bool = False


SERVICE_STATE = ServiceState()


def scheduler_started() -> None:
    """Call once the scheduler has started: ``/healthz`` then says ``"scheduler": "running"``."""
    SERVICE_STATE.scheduler_running = True
    _SCHEDULER.set(1)


def scheduler_stopped() -> None:
    """Call when the scheduler shuts down (``feedsvc serve`` never starts one)."""
    SERVICE_STATE.scheduler_running = False
    _SCHEDULER.set(0)


def scheduler_running() -> bool:
    return SERVICE_STATE.scheduler_running


# -- scraping --------------------------------------------------------------------------


def exposition(store: Store, accept: str | None) -> tuple[bytes, str]:
    """The scrape body and its Content-Type, in the format the scraper's Accept asks for.

    Without an Accept header that is the classic text format,
    ``text/plain; version=0.0.4``. Reads the database: call it from a thread.
    """
    encode, content_type = choose_encoder(accept or "")
    return encode(_Scrape(store)), content_type


class _Scrape(Collector):
    """The process's metrics followed by the database's gauges, for one scrape."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def collect(self) -> Iterable[Metric]:
        yield from REGISTRY.collect()
        yield from _database_gauges(self._store)


def _database_gauges(store: Store) -> Iterator[Metric]:
    """Sources by status and the last poll; only ``feedsvc_database_up 0`` when unreadable."""
    up = GaugeMetricFamily("feedsvc_database_up", "1 when the scrape could read the database.")
    try:
        counts = store.sources.count_by_status()
        last_poll = store.sources.last_polled_at()
        incidents = store.incidents.open_counts()
    except Exception as exc:  # any driver error: the counters are still worth serving
        log.warning("scrape without database", extra={"fields": {"error": str(exc)[:200]}})
        up.add_metric([], 0)
        yield up
        return
    up.add_metric([], 1)
    yield up
    sources = GaugeMetricFamily("feedsvc_sources", "Active sources by status.", labels=["status"])
    for status in SourceStatus:
        sources.add_metric([status.value], counts.get(status, 0))
    yield sources
    open_incidents = GaugeMetricFamily(
        "feedsvc_incidents_open", "Sources with an open incident, by kind.", labels=["kind"]
    )
    for kind in IncidentKind:
        open_incidents.add_metric([kind.value], incidents.get(kind, 0))
    yield open_incidents
    if last_poll is not None:
        yield GaugeMetricFamily(
            "feedsvc_last_poll_timestamp_seconds",
            "When any source was last polled (Unix time).",
            value=last_poll.timestamp(),
        )
