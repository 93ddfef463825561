"""``/admin/sources``: the open incidents, every source's health, its last polls and new
entries per day, and the actions of ``ingest.operate`` (poll now, pause, resume, forget
the moved URL).

"Poll now" queues: the source becomes due at once and the next poll tick of a
running ``feedsvc run`` (every 15 s, in whichever process claims it) fetches it;
the request answers at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from feedsvc import i18n
from feedsvc.ingest import operate
from feedsvc.model import Source, SourceStatus, utcnow
from feedsvc.store.activity import PollMark
from feedsvc.web.admin import charts
from feedsvc.web.status import INCIDENT_KIND_LABELS

if TYPE_CHECKING:
    from feedsvc.web.admin import Console, Visit

DAYS = 30
Translate = Callable[[str], str]
When = Callable[[datetime | None], str]
STATUS_LABELS = {
    SourceStatus.NEW: "New",
    SourceStatus.OK: "OK",
    SourceStatus.ERROR: "Error",
    SourceStatus.BACKOFF: "Backing off",
    SourceStatus.RETIRED: "Retired (410 Gone)",
    SourceStatus.PAUSED: "Paused",
}
MARKS = {  # outcome: (symbol, what it means; English keys of i18n.VI)
    "ok": ("✓", "fetched, nothing new"),
    "new": ("+", "new entries"),
    "error": ("✗", "failed"),
    "retired": ("⊘", "410 Gone"),
}
NOTICES = {
    "poll": "Queued: the next poll tick (within 15 seconds) fetches it.",
    "pause": "Paused: no process polls it until it is resumed.",
    "resume": "Resumed: it is polled on its schedule again.",
    "forget": "Back to the configured URL; queued for the next poll.",
}
ACTIONS = {
    "poll": lambda store, sid, by, now: operate.poll_now(store, sid, now=now),
    "pause": lambda store, sid, by, now: operate.pause(store, sid, by=by, now=now),
    "resume": lambda store, sid, by, now: operate.resume(store, sid, by=by),
    "forget": lambda store, sid, by, now: operate.forget_moved_url(store, sid, now=now),
}


@dataclass(frozen=True, slots=True)
class Mark:
    kind: str
    symbol: str
    text: str  # what it means and when, for the tooltip and screen readers


@dataclass(frozen=True, slots=True)
class SourceCard:
    """What the page shows of one source."""

    source: Source
    title: str
    status: str  # translated
    marks: list[Mark]
    chart: Markup
    last_polled: str
    next_poll: str
    paused: str  # "since …, by …", or ""


@dataclass(frozen=True, slots=True)
class IncidentLine:
    """An open incident (``ingest.alerts``), as the page lists it above the sources."""

    source_id: str
    title: str
    kind: str  # translated
    since: str
    last_error: str
    alerted: str  # when the alert went out, or "not yet"


def routes(console: Console) -> list[Route]:
    return [
        Route("/admin/sources", console.guard(_Page(console).show), methods=["GET", "HEAD"]),
        Route(
            "/admin/sources/{source_id}/{action}",
            console.guard(_Page(console).act),
            methods=["POST"],
        ),
    ]


class _Page:
    def __init__(self, console: Console) -> None:
        self.console = console

    async def show(self, request: Request, visit: Visit, *, problem: str = "") -> Response:
        locale = i18n.negotiate(
            request.headers.get("accept-language"), self.console.site.config.site.language
        )
        cards, incidents = await run_in_threadpool(self._cards, locale)
        notice = NOTICES.get(request.query_params.get("notice", ""), "")
        status = 409 if problem else 200
        return self.console.page(
            request,
            "web/admin/sources.html",
            status,
            visit,
            locale=locale,
            cards=cards,
            incidents=incidents,
            notice=notice,
            notice_source=request.query_params.get("source", ""),
            problem=problem,
        )

    async def act(self, request: Request, visit: Visit) -> Response:
        source_id, action = request.path_params["source_id"], request.path_params["action"]
        run = ACTIONS.get(action)
        if run is None:
            return self.console.site.render(request, "web/not_found.html", status=404)
        store = self.console.site.store
        try:
            done = await run_in_threadpool(run, store, source_id, visit.operator.handle, utcnow())
        except operate.OperateError as exc:
            await self.console.record(visit, action, f"source {source_id}", f"refused: {exc}")
            return await self.show(request, visit, problem=str(exc))
        await self.console.record(visit, action, f"source {source_id}", str(done))
        return self.console.done("/admin/sources", notice=action, source=source_id)

    def _cards(self, locale: str) -> tuple[list[SourceCard], list[IncidentLine]]:
        config = self.console.site.config
        store = self.console.site.store
        now = utcnow()
        zone = ZoneInfo(config.site.timezone)
        first_day = now.astimezone(zone).date() - timedelta(days=DAYS - 1)
        since = datetime.combine(first_day, datetime.min.time(), zone)
        per_day = store.activity.entries_per_day(since, config.site.timezone)
        polls = store.activity.polls()
        titles = {source.id: source.title for source in config.sources}
        _ = i18n.translator(locale)

        def when(moment: datetime | None) -> str:
            return format_datetime(moment, "short", tzinfo=zone, locale=locale) if moment else ""

        cards = []
        for source in store.sources.list(count=False):
            if not source.active:
                continue
            days = [
                per_day.get(source.id, {}).get(first_day + timedelta(days=n), 0)
                for n in range(DAYS)
            ]
            cards.append(
                SourceCard(
                    source=source,
                    title=titles.get(source.id) or source.title or source.id,
                    status=_(STATUS_LABELS[source.status]),
                    marks=[_mark(mark, _, when) for mark in polls.get(source.id, [])],
                    chart=charts.bars(days, _chart_label(days, _)),
                    last_polled=when(source.last_polled_at),
                    next_poll=when(source.next_poll_at),
                    paused=_paused(source, _, when),
                )
            )
        incidents = [
            IncidentLine(
                incident.source_id,
                titles.get(incident.source_id) or incident.source_id,
                _(INCIDENT_KIND_LABELS[incident.kind]),
                when(incident.since),
                incident.last_error or "",
                when(incident.notified_at) if incident.notified_at else _("not yet"),
            )
            for incident in store.incidents.open()
        ]
        return cards, incidents


def _mark(mark: PollMark, _: Translate, when: When) -> Mark:
    symbol, meaning = MARKS.get(mark.outcome, ("?", mark.outcome))
    return Mark(mark.outcome, symbol, f"{when(mark.at)}: {_(meaning)}")


def _chart_label(days: list[int], _: Translate) -> str:
    return _("{total} new entries in 30 days, at most {top} in a day").format(
        total=sum(days), top=max(days, default=0)
    )


def _paused(source: Source, _: Translate, when: When) -> str:
    if source.paused_at is None:
        return ""
    return _("Paused {when} by {who}").format(
        when=when(source.paused_at), who=source.paused_by or "?"
    )
