"""The operator console at ``/admin``: sources, subscribers, editions, and the log.

It only translates between HTTP and the use-cases (``ingest.operate``,
``newsletter.consent``, ``feedsvc.signin``); the rules are theirs. What guards it:

=====================================  ================================================
request                                answer
=====================================  ================================================
``http.admin`` is false                404, the ordinary not-found page
on, but no password hash is set        503, naming the variable (``feedsvc check`` and
                                       ``run`` refuse this too)
a page without a session               303 to ``/admin/login``
a POST without a session, or without   403: nothing changes
the session's CSRF token
=====================================  ================================================

The session cookie (``feedsvc_admin``, path ``/admin``) is HttpOnly, SameSite=Strict,
Secure when ``site.base_url`` is https, signed with the site secret
(``newsletter.tokens``) and expires with the session (``signin.LIFETIME``). Every
form carries ``csrf_token``: the session's id signed for the ``csrf`` purpose (the
sign-in form, before there is a session, a double-submit cookie as the public forms
have). Every answer is ``no-store`` and ``noindex``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlencode

from itsdangerous import BadData, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from feedsvc import signin
from feedsvc.lease import process_owner
from feedsvc.model import utcnow
from feedsvc.newsletter.confirmations import ConfirmationSender
from feedsvc.newsletter.tokens import Tokens, secret_key
from feedsvc.web.subscribe import CSRF_FIELD, NONCE, Form, client_address, parse_form

if TYPE_CHECKING:
    from feedsvc.web.app import Site

log = logging.getLogger("feedsvc.web.admin")

SESSION_COOKIE = "feedsvc_admin"
LOGIN_COOKIE = "feedsvc_admin_csrf"
PATH = "/admin"
MAX_FORM_BYTES = 256 * 1024
MAX_FIELDS = 1000
PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}


@dataclass(frozen=True, slots=True)
class Visit:
    """A signed-in request: who, from where, the token its forms carry, what it posted."""

    operator: signin.Operator
    client: str
    csrf_token: str
    form: Form = field(default_factory=dict)

    def field(self, name: str) -> str:
        values = self.form.get(name)
        return values[0] if values else ""


Page = Callable[[Request, Visit], Awaitable[Response]]


class Console:
    """The console's routes, reading the site's current configuration on every request."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.tokens = Tokens.from_config(site.config)
        self._cookies = URLSafeTimedSerializer(secret_key(site.config), salt="feedsvc.admin")
        self.sender = ConfirmationSender(
            lambda: site.config, site.store, self.tokens, process_owner()
        )

    def routes(self) -> list[Route]:
        from feedsvc.web.admin import editions, sources, subscribers

        pages = [
            *sources.routes(self),
            *subscribers.routes(self),
            *editions.routes(self),
        ]
        return [
            Route(PATH, self._home, methods=["GET", "HEAD"]),
            Route(f"{PATH}/", self._home, methods=["GET", "HEAD"]),
            Route(f"{PATH}/login", self.login, methods=["GET", "HEAD", "POST"]),
            Route(f"{PATH}/logout", self.guard(self._logout), methods=["POST"]),
            *pages,
        ]

    # --- the guard ---------------------------------------------------------------------

    def guard(self, page: Page, *, max_bytes: int = MAX_FORM_BYTES) -> Callable[..., Any]:
        """``page`` for a signed-in operator, with the refusals of the module docstring."""

        async def endpoint(request: Request) -> Response:
            closed = self._closed(request)
            if closed is not None:
                return closed
            who = await run_in_threadpool(self._operator, request)
            posted = request.method == "POST"
            if who is None:
                if posted:
                    return self._forbidden(request, "no session")
                target = quote(
                    request.url.path + ("?" + request.url.query if request.url.query else "")
                )
                return RedirectResponse(f"{self.base}{PATH}/login?next={target}", 303)
            form = await read_form(request, max_bytes) if posted else {}
            if posted and not self.tokens.csrf_matches(_first(form, CSRF_FIELD), who.session.id):
                return self._forbidden(request, "csrf")
            token = self.tokens.csrf_field(who.session.id)
            return await page(request, Visit(who, client_address(request), token, form))

        return endpoint

    def _closed(self, request: Request) -> Response | None:
        if not self.site.config.http.admin:
            return self.site.render(request, "web/not_found.html", status=404)
        if self.password_hash is None:
            variable = self.site.config.http.admin_password_env
            return self.page(request, "web/admin/closed.html", 503, variable=variable)
        return None

    @property
    def password_hash(self) -> str | None:
        return signin.stored_hash(self.site.config, os.environ)

    @property
    def base(self) -> str:
        return self.site.config.site.base_url.rstrip("/")

    def _operator(self, request: Request) -> signin.Operator | None:
        cookie, password_hash = request.cookies.get(SESSION_COOKIE), self.password_hash
        if not cookie or password_hash is None:
            return None
        try:
            token = self._cookies.loads(cookie, max_age=int(signin.LIFETIME.total_seconds()))
        except BadData:
            return None
        if not isinstance(token, str):
            return None
        return signin.operator(self.site.store, password_hash, token, utcnow())

    # --- pages -------------------------------------------------------------------------

    def page(
        self,
        request: Request,
        template: str,
        status: int = 200,
        visit: Visit | None = None,
        **context: Any,
    ) -> Response:
        """A console page: the site's layout, the nav when signed in, never cached."""
        parts = request.url.path.split("/")
        response = self.site.render(
            request,
            template,
            status,
            section=parts[2] if len(parts) > 2 else "",
            signed_in=visit is not None,
            csrf_token=visit.csrf_token if visit else context.pop("csrf_token", ""),
            **context,
        )
        response.headers.update(PRIVATE)
        return response

    def done(self, path: str, kept: str = "", **query: str | int) -> Response:
        """303 back to a page after an action (POST, redirect, GET); ``kept`` is a query
        string to keep (the search the form came from)."""
        added = urlencode({key: value for key, value in query.items() if value != ""})
        shown = "&".join(part for part in (kept, added) if part)
        return RedirectResponse(f"{self.base}{path}" + (f"?{shown}" if shown else ""), 303)

    async def record(
        self, visit: Visit, action: str, target: str, detail: str | None = None
    ) -> None:
        """Log an action: who did what to what (in a thread: it writes the database)."""
        await run_in_threadpool(
            signin.record,
            self.site.store,
            visit.operator,
            visit.client,
            action,
            target,
            now=utcnow(),
            detail=detail,
        )

    async def _home(self, request: Request) -> Response:
        closed = self._closed(request)
        return closed or RedirectResponse(f"{self.base}{PATH}/sources", 303)

    def _forbidden(self, request: Request, reason: str) -> Response:
        log.info("console refused", extra={"fields": {"path": request.url.path, "reason": reason}})
        return self.page(request, "web/forbidden.html", 403, back_url=f"{self.base}{PATH}/login")

    # --- signing in and out ------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        """``GET`` shows the form; ``POST`` checks the password within the limits."""
        closed = self._closed(request)
        if closed is not None:
            return closed
        if request.method != "POST":
            return self._login_page(request)
        form = await read_form(request, MAX_FORM_BYTES)
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        if not self.tokens.csrf_matches(_first(form, CSRF_FIELD), nonce):
            return self._forbidden(request, "csrf")
        password_hash = self.password_hash
        assert password_hash is not None  # _closed said so
        client = client_address(request)
        result = await run_in_threadpool(
            signin.sign_in, self.site.store, password_hash, _first(form, "password"),
            client=client, now=utcnow(),
        )  # fmt: skip
        if result.outcome is signin.Outcome.LIMITED:
            return self._limited(request, result)
        if result.outcome is signin.Outcome.WRONG or result.token is None:
            await run_in_threadpool(
                signin.record, self.site.store, None, client, "sign in failed", "console",
                now=utcnow(),
            )  # fmt: skip
            return self._login_page(request, 401, wrong=True)
        return await self._signed_in(request, result.token, client, _first(form, "next"))

    async def _signed_in(self, request: Request, token: str, client: str, wanted: str) -> Response:
        password_hash = self.password_hash
        assert password_hash is not None
        who = await run_in_threadpool(
            signin.operator, self.site.store, password_hash, token, utcnow()
        )
        assert who is not None
        await run_in_threadpool(
            signin.record, self.site.store, who, client, "sign in", "console", now=utcnow()
        )
        target = (
            wanted if wanted.startswith(f"{PATH}/") and "//" not in wanted else f"{PATH}/sources"
        )
        response = RedirectResponse(f"{self.base}{target}", 303)
        self._set_cookie(
            response, SESSION_COOKIE, self._cookies.dumps(token), signin.LIFETIME.total_seconds()
        )
        response.delete_cookie(LOGIN_COOKIE, path=PATH)
        return response

    def _login_page(self, request: Request, status: int = 200, *, wrong: bool = False) -> Response:
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        if NONCE.fullmatch(nonce):
            token = self.tokens.csrf_field(nonce)
        else:
            nonce, token = self.tokens.csrf_pair()
        wanted = request.query_params.get("next", "")
        response = self.page(
            request, "web/admin/login.html", status, csrf_token=token, wrong=wrong, next=wanted
        )
        self._set_cookie(response, LOGIN_COOKIE, nonce, 3600)
        return response

    def _limited(self, request: Request, result: signin.SignIn) -> Response:
        response = self.page(request, "web/admin/limited.html", 429)
        if result.retry_at is not None:
            wait = max(1, int((result.retry_at - utcnow()).total_seconds()))
            response.headers["Retry-After"] = str(wait)
        return response

    async def _logout(self, request: Request, visit: Visit) -> Response:
        await run_in_threadpool(
            signin.sign_out, self.site.store, visit.operator, client=visit.client, now=utcnow()
        )
        response = RedirectResponse(f"{self.base}{PATH}/login", 303)
        response.delete_cookie(SESSION_COOKIE, path=PATH)
        return response

    def _set_cookie(self, response: Response, name: str, value: str, seconds: float) -> None:
        response.set_cookie(
            name,
            value,
            max_age=int(seconds),
            path=PATH,
            httponly=True,
            samesite="strict",
            secure=self.site.config.site.base_url.startswith("https:"),
        )


async def read_form(request: Request, max_bytes: int) -> Form:
    """A posted form of at most ``max_bytes`` (413 beyond): urlencoded or multipart."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise HTTPException(413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise HTTPException(413)
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() == "multipart/form-data":
        return parse_form(content_type, bytes(body))
    try:
        text = bytes(body).decode("utf-8")
        return parse_qs(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return {}


def _first(form: Form, name: str) -> str:
    values = form.get(name)
    return values[0] if values else ""
