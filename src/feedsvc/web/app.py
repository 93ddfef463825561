"""The Starlette application: routes, templates, and what each request reads.

Requests read the store only through small, indexed lookups (one document by
name); anything costly happens ahead of time in the publish stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from feedsvc import i18n, templates_loader
from feedsvc.config import Config
from feedsvc.publish.feeds import MEDIA_TYPES
from feedsvc.publish.urls import feed_url
from feedsvc.store import Store
from feedsvc.web.admin import Console
from feedsvc.web.cache import CachedDocuments, DocumentCache
from feedsvc.web.digests import Archive
from feedsvc.web.disk import DiskFullPage
from feedsvc.web.feeds import document_response
from feedsvc.web.headers import (
    SecurityHeaders,
    add_security_headers,
    content_security_policy,
    inline_styles,
)
from feedsvc.web.reading import Reading
from feedsvc.web.search import Search
from feedsvc.web.status import Operator
from feedsvc.web.subscribe import Subscriptions

STATIC = Path(__file__).parents[1] / "static"


class Site:
    """What the handlers share: the configuration, the store, the templates."""

    def __init__(self, config: Config, store: Store) -> None:
        self.store = store
        self.documents = DocumentCache(store.documents)
        self.use(config)

    def use(self, config: Config) -> None:
        """Serve with ``config`` from now on (config.yaml was reloaded)."""
        self.config = config
        self.templates = templates_loader.environment(config, "web")
        self.policy = content_security_policy(config.site.base_url, config.site.logo_url)
        intervals = [config.source_interval(s).total_seconds() for s in config.sources]
        self.max_age = int(min(intervals, default=config.fetch.interval.total_seconds()))
        self.documents.reset(self.max_age, lambda h: add_security_headers(h, lambda: self.policy))

    def feed_links(self) -> list[dict[str, Any]]:
        """Every published feed, "all" first, for the index page and autodiscovery."""
        base = self.config.site.base_url
        groups = [("all", None, None)] + [
            (c.id, c.title, c.description) for c in self.config.categories
        ]
        return [
            {
                "id": category_id,
                "title": title,
                "description": description,
                "links": {fmt: feed_url(base, category_id, fmt) for fmt in self.formats},
            }
            for category_id, title, description in groups
        ]

    @property
    def formats(self) -> list[str]:
        return list(self.config.feeds.formats)

    def render(
        self,
        request: Request,
        template: str,
        status: int = 200,
        *,
        remote_images: bool = False,
        **context: Any,
    ) -> Response:
        """The page ``template`` in the visitor's language; ``remote_images``: it shows
        publishers' https images (story thumbnails), which its policy then allows."""
        locale = context.pop("locale", None) or i18n.negotiate(
            request.headers.get("accept-language"), self.config.site.language
        )
        html = self.templates.get_template(template).render(
            _=i18n.translator(locale),
            locale=locale,
            site=self.config.site,
            feeds=self.feed_links(),
            feed_types=MEDIA_TYPES,
            base_url=self.config.site.base_url.rstrip("/"),
            schedule_title=lambda name: i18n.schedule_title(self.config, name, locale),
            **context,
        )
        policy = content_security_policy(
            self.config.site.base_url,
            self.config.site.logo_url,
            inline_styles(html),
            remote_images=remote_images,
        )
        headers = {"Content-Language": locale, "Content-Security-Policy": policy}
        return HTMLResponse(html, status_code=status, headers=headers)


def create_app(config: Config, store: Store) -> Starlette:
    site = Site(config, store)
    subscriptions = Subscriptions(site)

    async def feed(request: Request) -> Response:
        name = request.path_params["name"]
        category, _, fmt = name.rpartition(".")
        known = {"all", *(c.id for c in site.config.categories)}
        if category not in known or fmt not in site.formats:
            return site.render(request, "web/not_found.html", status=404)
        document = await site.documents.load(request.scope["path"], name)
        if document is None:
            return Response(
                "feed not generated yet; try again shortly\n",
                status_code=503,
                headers={"Retry-After": "30"},
                media_type="text/plain",
            )
        return document_response(request, document, site.max_age)

    async def opml(request: Request) -> Response:
        document = await site.documents.load(request.scope["path"], "feeds.opml")
        if document is None:
            return site.render(request, "web/not_found.html", status=404)
        return document_response(request, document, site.max_age)

    async def not_found(request: Request, exc: Exception) -> Response:
        return site.render(request, "web/not_found.html", status=404)

    async def gone(request: Request, exc: Exception) -> Response:
        """The client left (or was cut off, ``web/protocol.py``) mid-body: nobody to answer."""
        return Response(status_code=400)

    routes = [
        *Reading(site, subscriptions).routes(),  # /, /c/{category}, /s/{entry id}
        *Search(site).routes(),  # /search, /feeds/search.* (before /feeds/{name})
        Route("/feeds/{name}", feed, methods=["GET", "HEAD"]),
        Route("/feeds.opml", opml, methods=["GET", "HEAD"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        *subscriptions.routes(),
        *Archive(site).routes(),  # /digests/…, /test-email
        *Operator(site).routes(),  # /healthz, /metrics, /status
        *Console(site).routes(),  # /admin/…, when http.admin is on
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(CachedDocuments, cache=site.documents),  # first: it skips the rest
            Middleware(SecurityHeaders, policy=lambda: site.policy),
            Middleware(DiskFullPage, page=lambda r: site.render(r, "web/unavailable.html", 503)),
        ],
        exception_handlers={404: not_found, ClientDisconnect: gone},
    )
    app.state.site = site
    return app
