"""The operator's endpoints: ``/healthz`` for a load balancer, ``/metrics`` for Prometheus,
``/status`` for a person.

``/healthz`` and ``/metrics`` are open: they say how the service is, not what it
holds (no source, address or subscriber appears in them, nor a driver's error:
see ``web/health.py``). ``/status`` lists every
source with its URL and last error, so it is off unless ``http.status_page: true``,
and then needs the token in ``$FEEDSVC_STATUS_TOKEN``, sent as ``Authorization:
Bearer TOKEN`` or, from a browser, as ``?token=TOKEN``:

================================  =====================================================
request                           answer
================================  =====================================================
status page off                   404, the ordinary not-found page
on, but the variable is unset     503, naming the variable to set (refusing everyone
                                  beats a page that anyone can open)
no token, or a wrong one          401 with ``WWW-Authenticate: Bearer`` and a token form
after WRONG_TOKENS wrong ones     429 with ``Retry-After`` for the rest of the window,
                                  whatever the token (else it is still a guessing oracle)
the right token                   200
================================  =====================================================

Tokens are compared as SHA-256 digests in constant time, so neither the token's
bytes nor its length show in the time an answer takes.

Every ``/status`` answer is ``no-store``, ``no-referrer`` and ``noindex``, so a token
in the address stays out of caches, other sites' logs and search engines.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from feedsvc import metrics
from feedsvc.model import DeliveryState, Incident, IncidentKind, Source, SourceStatus
from feedsvc.web.health import Checker
from feedsvc.web.ratelimit import SlidingWindow

if TYPE_CHECKING:
    from feedsvc.web.app import Site

STATUS_TOKEN_ENV = "FEEDSVC_STATUS_TOKEN"
WRONG_TOKENS = (10, timedelta(minutes=15))  # per client; then it waits out the window

PRIVATE = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}

# English keys of i18n.VI: what each status means to a person, not its stored code.
SOURCE_STATUS_LABELS = {
    SourceStatus.NEW: "New",
    SourceStatus.OK: "OK",
    SourceStatus.ERROR: "Error",
    SourceStatus.BACKOFF: "Backing off",
    SourceStatus.RETIRED: "Retired (410 Gone)",
    SourceStatus.PAUSED: "Paused",
}
DELIVERY_STATE_LABELS = {
    DeliveryState.PENDING: "Waiting",
    DeliveryState.SENDING: "Sending",
    DeliveryState.SENT: "Sent",
    DeliveryState.FAILED: "Failed",
    DeliveryState.UNKNOWN: "Unknown outcome",
    DeliveryState.EMPTY: "Nothing new",
    DeliveryState.BOUNCED: "Bounced later",
}
INCIDENT_KIND_LABELS = {
    IncidentKind.FAILING: "Failing",
    IncidentKind.RETIRED: "Gone (410)",
    IncidentKind.QUIET: "Quiet",
}

CHECK_LABELS = {"database": "Database", "disk": "Disk space"}


@dataclass(frozen=True, slots=True)
class StatusView:
    """What the status page shows, read in one thread hop."""

    sources: list[Source]
    deliveries: list[tuple[DeliveryState, int]]
    last_poll: datetime | None
    incidents: list[Incident]  # open ones (ingest.alerts)


class Lockout:
    """Clients that sent too many wrong tokens: after ``limit`` in ``window``, a client
    is refused for one whole window, right token or not.

    In this process's memory, like the sign-up limits (``web/ratelimit.py``).
    """

    def __init__(self, limit: int, window: timedelta) -> None:
        self.window = window.total_seconds()
        self._wrong = SlidingWindow(limit - 1, window)  # refuses the limit-th: lock then
        self._until: dict[str, float] = {}

    def locked(self, client: str, now: float) -> float:
        """Seconds ``client`` still has to wait (0: it may try)."""
        until = self._until.get(client, 0.0)
        if until <= now:
            self._until.pop(client, None)
            return 0.0
        return until - now

    def wrong(self, client: str, now: float) -> None:
        """Count a wrong token from ``client``; one too many locks it out."""
        if not self._wrong.allow(client, now):
            if len(self._until) >= MAX_LOCKED:  # a flood of addresses: forget the oldest
                del self._until[next(iter(self._until))]
            self._until[client] = now + self.window


MAX_LOCKED = 10_000


class Operator:
    """The three routes, reading the site's current configuration on every request
    (config.yaml may be reloaded, turning the status page on or off)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.lockout = Lockout(*WRONG_TOKENS)
        self.checker = Checker()

    def routes(self) -> list[Route]:
        return [
            Route("/healthz", self.healthz, methods=["GET", "HEAD"]),
            Route("/metrics", self.scrape, methods=["GET", "HEAD"]),
            Route("/status", self.status, methods=["GET", "HEAD"]),
        ]

    async def healthz(self, request: Request) -> Response:
        """200 when every check passes, else 503; always JSON, never a detail."""
        health = await run_in_threadpool(self.checker.run, self.site.config, self.site.store)
        last_poll = health.last_poll.isoformat() if health.last_poll else None
        body = {**health.public(), "scheduler": _scheduler(), "last_poll": last_poll}
        return JSONResponse(body, status_code=200 if health.ok else 503)

    async def scrape(self, request: Request) -> Response:
        """Prometheus exposition, in the format the scraper's Accept header asks for."""
        accept = request.headers.get("accept")
        body, content_type = await run_in_threadpool(metrics.exposition, self.site.store, accept)
        return Response(body, media_type=content_type)

    async def status(self, request: Request) -> Response:
        """The operator page: every source's health and the deliveries by state."""
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        health = await run_in_threadpool(self.checker.run, self.site.config, self.site.store)
        view = await run_in_threadpool(self._read) if health.check("database").ok else None
        return self._page(
            request,
            200 if health.ok else 503,
            view=view,
            health=health,
            scheduler=metrics.scheduler_running(),
        )

    def _refusal(self, request: Request) -> Response | None:
        """The 404, 503 or 401 this request gets, or None when it may see the page."""
        if not self.site.config.http.status_page:
            return self.site.render(request, "web/not_found.html", status=404)
        expected = os.environ.get(STATUS_TOKEN_ENV, "").strip()
        if not expected:
            return self._page(request, 503, unconfigured=True, variable=STATUS_TOKEN_ENV)
        client, now = request.client.host if request.client else "", time.monotonic()
        wait = self.lockout.locked(client, now)
        if wait:
            response = self._page(request, 429, limited=True)
            response.headers["Retry-After"] = str(math.ceil(wait))
            return response
        given = _given_token(request)
        if not hmac.compare_digest(_digest(given), _digest(expected.encode())):
            if given:
                self.lockout.wrong(client, now)
            response = self._page(request, 401, locked=True)
            response.headers["WWW-Authenticate"] = 'Bearer realm="feedsvc status"'
            return response
        return None

    def _read(self) -> StatusView:
        store = self.site.store
        sources = store.sources.list()
        counts = store.deliveries.counts()
        polled = [s.last_polled_at for s in sources if s.last_polled_at is not None]
        return StatusView(
            sources=sources,
            deliveries=[(state, counts.get(state.value, 0)) for state in DeliveryState],
            last_poll=max(polled, default=None),
            incidents=store.incidents.open(),
        )

    def _page(self, request: Request, status: int, **context: Any) -> Response:
        timezone = self.site.config.site.timezone
        zone = ZoneInfo(timezone)

        def when(moment: datetime | None, locale: str) -> str:
            return format_datetime(moment, "medium", tzinfo=zone, locale=locale) if moment else ""

        response = self.site.render(
            request,
            "web/status.html",
            status,
            when=when,
            timezone=timezone,
            source_labels=SOURCE_STATUS_LABELS,
            delivery_labels=DELIVERY_STATE_LABELS,
            incident_labels=INCIDENT_KIND_LABELS,
            check_labels=CHECK_LABELS,
            lockout_minutes=int(WRONG_TOKENS[1].total_seconds() // 60),
            **context,
        )
        response.headers.update(PRIVATE)
        return response


def _scheduler() -> str:
    return "running" if metrics.scheduler_running() else "not running"


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


def _given_token(request: Request) -> bytes:
    """The token's UTF-8 bytes from ``Authorization: Bearer``, else from ``?token=``.

    Header values arrive decoded as Latin-1; encoding them back gives the bytes
    that were sent, so a token with non-ASCII letters works both ways.
    """
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip().encode("latin-1")
    return request.query_params.get("token", "").strip().encode()
