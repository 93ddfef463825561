"""``/admin/editions``: each sent period with its deliveries by state and links to its
editions' web pages, and a chart of how many subscribers each period went to; and
``/admin/events``, the log of what was done in the console.

"Subscribers over time" is measured where it is certain: a period's deliveries are
the subscribers it was planned for (deleted readers' included, as counts), so the
chart is the list's size at each period, per schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from feedsvc import i18n
from feedsvc.store.activity import PeriodReport
from feedsvc.web.admin import charts

if TYPE_CHECKING:
    from feedsvc.web.admin import Console, Page, Visit

PAGE = 20  # periods per page
EVENTS = 100  # log lines per page
STATES = ("sent", "failed", "bounced", "unknown", "empty", "pending", "sending")
STATE_LABELS = {
    "sent": "Sent",
    "failed": "Failed",
    "bounced": "Bounced later",
    "unknown": "Unknown outcome",
    "empty": "Nothing new",
    "pending": "Waiting",
    "sending": "Sending",
}


@dataclass(frozen=True, slots=True)
class EditionLink:
    url: str
    label: str  # language and categories of the variant


@dataclass(frozen=True, slots=True)
class PeriodRow:
    schedule: str
    when: str
    counts: list[tuple[str, str, int]]  # (state, label, count), the states it has
    total: int
    editions: list[EditionLink]


def routes(console: Console) -> list[Route]:
    return [
        Route("/admin/editions", console.guard(_Editions(console).show), methods=["GET", "HEAD"]),
        Route("/admin/events", console.guard(_events(console)), methods=["GET", "HEAD"]),
    ]


class _Editions:
    def __init__(self, console: Console) -> None:
        self.console = console

    async def show(self, request: Request, visit: Visit) -> Response:
        config = self.console.site.config
        locale = i18n.negotiate(request.headers.get("accept-language"), config.site.language)
        before = _moment(request.query_params.get("before"))
        reports = await run_in_threadpool(
            self.console.site.store.activity.periods, before=before, limit=PAGE
        )
        rows = [self._row(report, locale) for report in reports]
        older = reports[-1].period.isoformat() if len(reports) == PAGE else ""
        return self.console.page(
            request,
            "web/admin/editions.html",
            200,
            visit,
            locale=locale,
            rows=rows,
            chart=self._chart(reports, locale),
            older=older,
        )

    def _row(self, report: PeriodReport, locale: str) -> PeriodRow:
        config = self.console.site.config
        _ = i18n.translator(locale)
        titles = {c.id: c.title for c in config.categories}
        base = config.site.base_url.rstrip("/")
        links = [
            EditionLink(
                f"{base}/digests/{edition.schedule}/{edition.id}",
                f"{edition.locale} · " + ", ".join(titles.get(c, c) for c in edition.categories),
            )
            for edition in report.editions
        ]
        counts = [
            (state, _(STATE_LABELS[state]), report.counts[state])
            for state in STATES
            if report.counts.get(state)
        ]
        return PeriodRow(
            schedule=i18n.schedule_title(config, report.schedule, locale),
            when=self._when(report.period, locale),
            counts=counts,
            total=report.total,
            editions=links,
        )

    def _chart(self, reports: list[PeriodReport], locale: str) -> Markup | None:
        if not reports:
            return None
        config = self.console.site.config
        _ = i18n.translator(locale)
        periods = sorted({report.period for report in reports})
        totals = {(r.schedule, r.period): r.total for r in reports}
        series = [
            charts.Series(
                i18n.schedule_title(config, name, locale),
                [totals.get((name, period)) for period in periods],
            )
            for name in dict.fromkeys(r.schedule for r in sorted(reports, key=lambda r: r.schedule))
        ]
        shown = [self._when(period, locale, "short") for period in periods]
        described = "; ".join(
            f"{one.name}: " + ", ".join(str(v) for v in one.values if v is not None)
            for one in series
        )
        return charts.lines(series, shown, _("Subscribers per period") + f" — {described}")

    def _when(self, moment: datetime, locale: str, size: str = "medium") -> str:
        zone = ZoneInfo(self.console.site.config.site.timezone)
        return format_datetime(moment, size, tzinfo=zone, locale=locale)


def _events(console: Console) -> Page:
    async def show(request: Request, visit: Visit) -> Response:
        config = console.site.config
        locale = i18n.negotiate(request.headers.get("accept-language"), config.site.language)
        before = request.query_params.get("before", "")
        events = await run_in_threadpool(
            console.site.store.console.events,
            before=int(before) if before.isdigit() else None,
            limit=EVENTS,
        )
        zone = ZoneInfo(config.site.timezone)
        shown = [(format_datetime(e.at, "short", tzinfo=zone, locale=locale), e) for e in events]
        older = str(events[-1].id) if len(events) == EVENTS else ""
        return console.page(
            request, "web/admin/events.html", 200, visit, locale=locale, events=shown, older=older
        )

    return show


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else None
