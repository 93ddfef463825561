"""The operator's endpoints: ``/healthz`` for a load balancer, ``/metrics`` for Prometheus,
``/status`` for a person.

``/healthz`` and ``/metrics`` are open: they say how the service is, not what it
holds (no source, address or subscriber appears in them). ``/status`` lists every
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
the right token                   200
================================  =====================================================

Every ``/status`` answer is ``no-store``, ``no-referrer`` and ``noindex``, so a token
in the address stays out of caches, other sites' logs and search engines.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from feedsvc import metrics
from feedsvc.model import DeliveryState, Incident, IncidentKind, Source, SourceStatus

if TYPE_CHECKING:
    from feedsvc.web.app import Site

STATUS_TOKEN_ENV = "FEEDSVC_STATUS_TOKEN"

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


@dataclass(frozen=True, slots=True)
class StatusView:
    """What the status page shows, read in one thread hop."""

    sources: list[Source]
    deliveries: list[tuple[DeliveryState, int]]
    last_poll: datetime | None
    incidents: list[Incident]  # open ones (ingest.alerts)


class Operator:
    """The three routes, reading the site's current configuration on every request
    (config.yaml may be reloaded, turning the status page on or off)."""

    def __init__(self, site: Site) -> None:
        self.site = site

    def routes(self) -> list[Route]:
        return [
            Route("/healthz", self.healthz, methods=["GET", "HEAD"]),
            Route("/metrics", self.scrape, methods=["GET", "HEAD"]),
            Route("/status", self.status, methods=["GET", "HEAD"]),
        ]

    async def healthz(self, request: Request) -> Response:
        """200 when the database answers, else 503; always JSON.

        The last-poll query is the database check: one round trip, and it also
        fails when the schema is missing, which a bare ``SELECT 1`` would not see.
        """
        scheduler = "running" if metrics.scheduler_running() else "not running"
        try:
            last_poll = await run_in_threadpool(self.site.store.sources.last_polled_at)
        except Exception as exc:  # any driver error means the same to a load balancer
            body = {"status": "error", "database": str(exc)[:200], "scheduler": scheduler}
            return JSONResponse({**body, "last_poll": None}, status_code=503)
        body = {"status": "ok", "database": "ok", "scheduler": scheduler}
        return JSONResponse({**body, "last_poll": last_poll.isoformat() if last_poll else None})

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
        view = await run_in_threadpool(self._read)
        return self._page(request, 200, view=view, scheduler=metrics.scheduler_running())

    def _refusal(self, request: Request) -> Response | None:
        """The 404, 503 or 401 this request gets, or None when it may see the page."""
        if not self.site.config.http.status_page:
            return self.site.render(request, "web/not_found.html", status=404)
        expected = os.environ.get(STATUS_TOKEN_ENV, "").strip()
        if not expected:
            return self._page(request, 503, unconfigured=True, variable=STATUS_TOKEN_ENV)
        if not hmac.compare_digest(_given_token(request), expected.encode()):
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
            **context,
        )
        response.headers.update(PRIVATE)
        return response


def _given_token(request: Request) -> bytes:
    """The token's UTF-8 bytes from ``Authorization: Bearer``, else from ``?token=``.

    Header values arrive decoded as Latin-1; encoding them back gives the bytes
    that were sent, so a token with non-ASCII letters works both ways.
    """
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip().encode("latin-1")
    return request.query_params.get("token", "").strip().encode()
