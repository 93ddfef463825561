"""``/admin/subscribers``: a folded search with filters and keyset pages, the consent actions
per row and for a selection (checkboxes: no JavaScript), and CSV import and export.

Every action is ``newsletter.consent``'s (confirm, resend, unsubscribe, delete, import);
this module reads the form, calls it per subscriber, logs it, and redirects back to
the same search. Deleting asks once more, on a page of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode
from zoneinfo import ZoneInfo

from babel.dates import format_date
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from feedsvc import i18n
from feedsvc.model import Subscriber, SubscriberStatus, utcnow
from feedsvc.newsletter import consent, roster
from feedsvc.store.subscribers import SubscriberPage, SubscriberQuery

if TYPE_CHECKING:
    from feedsvc.web.admin import Console, Visit

MAX_IMPORT_BYTES = 10 * 1024 * 1024
ACTIONS = ("confirm", "resend", "unsubscribe", "delete")
FILTERS = ("q", "status", "schedule", "category")
STATUS_LABELS = {
    SubscriberStatus.PENDING: "Pending",
    SubscriberStatus.ACTIVE: "Active",
    SubscriberStatus.UNSUBSCRIBED: "Unsubscribed",
    SubscriberStatus.BOUNCED: "Bounced",
}
NOTICES = {
    "confirm": "Confirmed: {ok}.",
    "resend": "Confirmation emails queued: {ok}.",
    "unsubscribe": "Unsubscribed: {ok}.",
    "delete": "Deleted: {ok}.",
}


@dataclass(frozen=True, slots=True)
class Row:
    """One subscriber as the list shows it, with the actions that apply."""

    id: int
    email: str
    status: str  # the stored value, for the badge's class
    status_label: str
    schedule: str
    categories: str
    created: str
    confirmed: str
    bounces: int
    actions: tuple[str, ...]


def routes(console: Console) -> list[Route]:
    page = _Page(console)
    return [
        Route("/admin/subscribers", console.guard(page.show), methods=["GET", "HEAD"]),
        Route("/admin/subscribers/act", console.guard(page.act), methods=["POST"]),
        Route(
            "/admin/subscribers/import",
            console.guard(page.import_csv, max_bytes=MAX_IMPORT_BYTES),
            methods=["POST"],
        ),
        Route("/admin/subscribers/export", console.guard(page.export), methods=["GET"]),
    ]


class _Page:
    def __init__(self, console: Console) -> None:
        self.console = console

    @property
    def store(self) -> Any:
        return self.console.site.store

    async def show(self, request: Request, visit: Visit) -> Response:
        params = request.query_params
        query = self._query({name: params.get(name, "") for name in FILTERS}, params.get("after"))
        locale = self._locale(request)
        found: SubscriberPage = await run_in_threadpool(self.store.subscribers.search, query)
        filters = {name: params.get(name, "") for name in FILTERS}
        notice = NOTICES.get(params.get("notice", ""), "")
        return self.console.page(
            request,
            "web/admin/subscribers.html",
            200,
            visit,
            locale=locale,
            rows=[self._row(s, locale) for s in found.subscribers],
            total=found.total,
            more_than=found.more_than,
            filters=filters,
            back=urlencode({k: v for k, v in filters.items() if v}),
            next_page=_next(filters, found.next_after),
            offered=self._offered(locale),
            notice=notice,
            notice_ok=_count(params.get("ok")),
            notice_failed=_count(params.get("failed")),
        )

    async def act(self, request: Request, visit: Visit) -> Response:
        """A row's button (``row=ACTION:ID``) or the selection's (``bulk=ACTION`` + ``id``s)."""
        action, ids = _chosen(visit)
        if action not in ACTIONS or not ids:
            return self.console.done("/admin/subscribers", _back(visit))
        people = await run_in_threadpool(self.store.subscribers.many, ids)
        chosen = [people[i] for i in ids if i in people]
        if action == "delete" and visit.field("sure") != "yes":
            return self.console.page(
                request,
                "web/admin/delete.html",
                200,
                visit,
                locale=self._locale(request),
                chosen=chosen,
                back=_back(visit),
            )
        ok = 0
        for subscriber in chosen:
            ok += await self._one(visit, action, subscriber)
        if action == "resend" and ok:
            self.console.sender.nudge()
        failed = len(ids) - ok
        return self.console.done(
            "/admin/subscribers", _back(visit), notice=action, ok=ok, failed=failed
        )

    async def _one(self, visit: Visit, action: str, subscriber: Subscriber) -> bool:
        run = _CONSENT[action]
        try:
            outcome = await run_in_threadpool(run, self.store, subscriber)
        except consent.ConsentError as exc:
            await self.console.record(
                visit, action, f"subscriber {subscriber.id}", f"refused: {exc}"
            )
            return False
        detail = str(outcome) if action != "delete" else "deleted (address erased)"
        await self.console.record(visit, action, f"subscriber {subscriber.id}", detail)
        return True

    async def import_csv(self, request: Request, visit: Visit) -> Response:
        """The same CSV as ``feedsvc subscribers import``, with its rules (newsletter.consent)."""
        config = self.console.site.config
        text = visit.field("file").lstrip("\ufeff")
        confirmed = visit.field("confirmed") == "yes"
        rows, problems = roster.read_csv(config, text)
        summary = await run_in_threadpool(
            consent.import_rows, config, self.store, rows, confirmed=confirmed, now=utcnow()
        )
        if summary.queued:
            self.console.sender.nudge()
        detail = (
            f"{summary.active} active, {summary.pending} pending, {summary.kept} kept,"
            f" {summary.present} present, {len(problems)} rejected"
        )
        await self.console.record(visit, "import", "subscribers", detail)
        return self.console.page(
            request,
            "web/admin/imported.html",
            200,
            visit,
            locale=self._locale(request),
            summary=summary,
            problems=problems[:100],
            rejected=len(problems),
        )

    async def export(self, request: Request, visit: Visit) -> Response:
        """Every subscriber as the CLI's export writes them."""
        everyone = await run_in_threadpool(self.store.subscribers.list)
        await self.console.record(visit, "export", "subscribers", f"{len(everyone)} rows")
        headers = {
            "Content-Disposition": 'attachment; filename="subscribers.csv"',
            "Cache-Control": "no-store",
        }
        return Response(
            roster.write_csv(everyone), media_type="text/csv; charset=utf-8", headers=headers
        )

    # --- views -------------------------------------------------------------------------

    def _locale(self, request: Request) -> str:
        return i18n.negotiate(
            request.headers.get("accept-language"), self.console.site.config.site.language
        )

    def _query(self, filters: dict[str, str], after: str | None) -> SubscriberQuery:
        config = self.console.site.config
        status = filters["status"]
        return SubscriberQuery(
            text=filters["q"][:320],
            status=SubscriberStatus(status) if status in set(SubscriberStatus) else None,
            schedule=filters["schedule"]
            if filters["schedule"] in config.newsletter.schedules
            else None,
            category=filters["category"]
            if filters["category"] in {c.id for c in config.categories}
            else None,
            after=int(after) if after and after.isdigit() else None,
        )

    def _row(self, subscriber: Subscriber, locale: str) -> Row:
        config = self.console.site.config
        titles = {c.id: c.title for c in config.categories}
        zone = ZoneInfo(config.site.timezone)
        _ = i18n.translator(locale)

        def day(moment: datetime | None) -> str:
            return format_date(moment.astimezone(zone), "short", locale=locale) if moment else ""

        return Row(
            id=subscriber.id,
            email=subscriber.email,
            status=subscriber.status.value,
            status_label=_(STATUS_LABELS[subscriber.status]),
            schedule=i18n.schedule_title(config, subscriber.schedule, locale),
            categories=", ".join(titles.get(c, c) for c in subscriber.categories),
            created=day(subscriber.created_at),
            confirmed=day(subscriber.confirmed_at),
            bounces=subscriber.bounce_count,
            actions=_applicable(subscriber),
        )

    def _offered(self, locale: str) -> dict[str, list[tuple[str, str]]]:
        config = self.console.site.config
        _ = i18n.translator(locale)
        return {
            "status": [(s.value, _(label)) for s, label in STATUS_LABELS.items()],
            "schedule": [
                (name, i18n.schedule_title(config, name, locale))
                for name in config.newsletter.schedules
            ],
            "category": [(c.id, c.title) for c in config.categories],
        }


_CONSENT: dict[str, Callable[[Any, Subscriber], object]] = {
    "confirm": lambda store, s: consent.confirm(store, s, utcnow())[1],
    "resend": lambda store, s: consent.resend(store, s.email, origin="console", now=utcnow())[0],
    "unsubscribe": lambda store, s: consent.unsubscribe(store, s, origin="console"),
    "delete": lambda store, s: consent.delete(store, s, origin="console"),
}


def _applicable(subscriber: Subscriber) -> tuple[str, ...]:
    """The buttons a row offers (consent decides again when one is pressed)."""
    if subscriber.status is SubscriberStatus.PENDING:
        return ("confirm", "resend", "unsubscribe", "delete")
    if subscriber.status is SubscriberStatus.ACTIVE:
        return ("unsubscribe", "delete")
    return ("delete",)


def _chosen(visit: Visit) -> tuple[str, list[int]]:
    row = visit.field("row")
    if row:
        action, _, ident = row.partition(":")
        return action, [int(ident)] if ident.isdigit() else []
    ids = [int(i) for i in visit.form.get("id", []) if i.isdigit()]
    return visit.field("bulk"), list(dict.fromkeys(ids))


def _back(visit: Visit) -> str:
    """The search the form came from, its known fields only."""
    sent = parse_qs(visit.field("back"))
    return urlencode({name: sent[name][0] for name in FILTERS if sent.get(name)})


def _next(filters: dict[str, str], after: int | None) -> str:
    if after is None:
        return ""
    return urlencode({**{k: v for k, v in filters.items() if v}, "after": after})


def _count(text: str | None) -> int:
    return int(text) if text and text.isdigit() else 0
