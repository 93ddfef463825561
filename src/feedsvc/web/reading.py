"""The pages a reader opens: ``/`` (each category's newest stories, the feeds, the sign-up
form), ``/c/{category}`` (its stories, 30 a page) and ``/s/{entry id}`` (one story).

Only translation happens here: the request's cursor and ids into ``feedsvc.reading``,
its stories into templates (with ``reading.helpers``: times in the visitor's language
and the site's zone).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from feedsvc import i18n, reading
from feedsvc.publish.urls import category_url, feed_url

if TYPE_CHECKING:
    from feedsvc.web.app import Site
    from feedsvc.web.subscribe import Subscriptions

STYLESHEET = Path(__file__).parents[1] / "static" / "feed.xsl"
XSLT = "text/xsl; charset=utf-8"
_STORY_ID = 18  # digits: more cannot be a stored id, and would only cost a query


class Reading:
    def __init__(self, site: Site, subscriptions: Subscriptions) -> None:
        self.site = site
        self.subscriptions = subscriptions

    def routes(self) -> list[Route]:
        return [
            Route("/", self.index, methods=["GET", "HEAD"]),
            Route("/c/{category}", self.category, methods=["GET", "HEAD"]),
            Route("/s/{entry_id}", self.story, methods=["GET", "HEAD"]),
            # before the /static mount: StaticFiles would guess application/xml
            Route("/static/feed.xsl", self.feed_stylesheet, methods=["GET", "HEAD"]),
        ]

    async def index(self, request: Request) -> Response:
        store, config = self.site.store, self.site.config
        sections = await run_in_threadpool(reading.front_page, store, config)
        return self.subscriptions.page(
            request,
            "web/index.html",
            form=self.subscriptions.blank_form(),
            sections=sections,
            remote_images=True,
            **self._helpers(request),
        )

    async def category(self, request: Request) -> Response:
        category_id = request.path_params["category"]
        if category_id not in reading.category_ids(self.site.config):
            return self.site.render(request, "web/not_found.html", status=404)
        params = request.query_params
        try:
            page = await run_in_threadpool(
                reading.category_page,
                self.site.store,
                category_id,
                before=params.get("before"),
                after=params.get("after"),
            )
        except reading.BadCursor:
            first = category_url(self._base, category_id)
            return self.site.render(request, "web/bad_page.html", status=400, first=first)
        return self._page(
            request,
            "web/category.html",
            page=page,
            title=self._category_title(request, category_id),
            feed_links={fmt: feed_url(self._base, category_id, fmt) for fmt in self.site.formats},
        )

    async def story(self, request: Request) -> Response:
        text = request.path_params["entry_id"]
        if not (text.isascii() and text.isdigit() and len(text) <= _STORY_ID):
            return self.site.render(request, "web/not_found.html", status=404)
        found = await run_in_threadpool(reading.story, self.site.store, int(text))
        if found is None:
            return self.site.render(request, "web/not_found.html", status=404)
        titles = {c.id: c.title for c in self.site.config.categories}
        filed = [(c, titles[c]) for c in found.story.category_ids if c in titles]
        return self._page(
            request, "web/story.html", story=found.story, around=found.around, filed=filed
        )

    async def feed_stylesheet(self, request: Request) -> Response:
        """The XSLT a browser renders the RSS and Atom feeds with, as ``text/xsl``."""
        headers = {"Cache-Control": "public, max-age=3600"}
        return FileResponse(STYLESHEET, media_type=XSLT, headers=headers)

    # --- helpers -------------------------------------------------------------------------

    @property
    def _base(self) -> str:
        return self.site.config.site.base_url.rstrip("/")

    def _page(self, request: Request, template: str, **context: Any) -> Response:
        response = self.site.render(
            request, template, remote_images=True, **context, **self._helpers(request)
        )
        response.headers["Cache-Control"] = "public, max-age=60"
        response.headers["Vary"] = "Accept-Language"
        return response

    def _category_title(self, request: Request, category_id: str) -> str:
        titles = {c.id: c.title for c in self.site.config.categories}
        if category_id in titles:
            return titles[category_id]
        return i18n.translator(self._locale(request))("All categories")

    def _locale(self, request: Request) -> str:
        header = request.headers.get("accept-language")
        return i18n.negotiate(header, self.site.config.site.language)

    def _helpers(self, request: Request) -> dict[str, Any]:
        return reading.helpers(self.site.config, self._locale(request))
