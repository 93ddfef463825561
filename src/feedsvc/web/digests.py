"""The archive of sent editions: ``/digests/``, one edition ("view in browser"), and the
archive as Atom; and the page every link of a test email opens."""

from __future__ import annotations

import gzip
import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from feedsvc import i18n
from feedsvc.model import Edition
from feedsvc.newsletter import archive
from feedsvc.newsletter.preview import TEST_PAGE
from feedsvc.store.documents import Document
from feedsvc.web.feeds import document_response

if TYPE_CHECKING:
    from feedsvc.web.app import Site

PAGE = 20  # editions per archive page
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # the "updated" of an empty archive: the same bytes


class Archive:
    def __init__(self, site: Site) -> None:
        self.site = site

    def routes(self) -> list[Route]:
        return [
            Route("/digests/", self.index, methods=["GET", "HEAD"]),
            Route("/digests/{name}", self.feed, methods=["GET", "HEAD"]),
            Route("/digests/{schedule}/{edition_id}", self.edition, methods=["GET", "HEAD"]),
            Route(TEST_PAGE, self.test_email, methods=["GET", "HEAD", "POST"]),
        ]

    async def index(self, request: Request) -> Response:
        """Sent editions, newest first, per schedule; ``?before=`` pages back."""
        config = self.site.config
        before = _period(request.query_params.get("before"))
        store = self.site.store
        editions = await run_in_threadpool(store.editions.archive, None, before=before, limit=PAGE)
        views = [archive.view(config, e, {}) for e in editions]
        older = editions[-1].period.isoformat() if len(editions) == PAGE else None
        return self.site.render(
            request,
            "web/digests.html",
            views=views,
            older=older,
            schedules=list(config.newsletter.schedules),
        )

    async def edition(self, request: Request) -> Response:
        schedule = request.path_params["schedule"]
        edition = await run_in_threadpool(
            self.site.store.editions.get, request.path_params["edition_id"]
        )
        if edition is None or edition.schedule != schedule:
            return self.site.render(request, "web/not_found.html", status=404)
        shown = await run_in_threadpool(self._view, edition)
        intro = i18n.schedule_intro(self.site.config, schedule, edition.locale)
        response = self.site.render(
            request, "web/edition.html", edition=shown, locale=edition.locale, intro=intro
        )
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response

    async def feed(self, request: Request) -> Response:
        name = request.path_params["name"]
        schedule, _, fmt = name.rpartition(".")
        if fmt != "atom" or schedule not in self.site.config.newsletter.schedules:
            return self.site.render(request, "web/not_found.html", status=404)
        document = await run_in_threadpool(self._atom, schedule)
        return document_response(request, document, 600)

    async def test_email(self, request: Request) -> Response:
        return self.site.render(request, "web/test_email.html")

    def _view(self, edition: Edition) -> archive.EditionView:
        ids = [i for section in edition.sections for i in section.entry_ids]
        entries = {entry.id: entry for entry in self.site.store.categories.entries(ids)}
        return archive.view(self.site.config, edition, entries)

    def _atom(self, schedule: str) -> Document:
        editions = self.site.store.editions.archive(schedule, limit=PAGE)
        views = [self._view(edition) for edition in editions]
        body = archive.atom(self.site.config, schedule, views, EPOCH)
        newest = max((e.created_at for e in editions if e.created_at), default=None)
        return Document(
            f"{schedule}.atom",
            "application/atom+xml; charset=utf-8",
            body,
            gzip.compress(body, mtime=0),
            '"' + hashlib.sha256(body).hexdigest()[:32] + '"',
            (newest or EPOCH).replace(microsecond=0),
        )


def _period(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else None
