"""The subscriber's web flows: sign up, confirm, change preferences, unsubscribe.

Three promises shape this module:

- **Nobody learns who subscribes.** ``POST /subscribe`` answers with the same
  bytes for a new address, a known one and a bot caught by the honeypot; the
  confirmation email goes out in a task detached from the request, so the time
  taken does not tell either.
- **A GET never changes a subscription** (except ``/confirm``, whose whole job
  is to be clicked): mail scanners prefetch the links of every email.
- **Unsubscribing always works**, with the page's button or with the RFC 8058
  one-click POST that mail providers send without cookies.

CSRF is a signed double submit: a random value in an HttpOnly, SameSite=Lax
cookie, and the same value signed (purpose ``csrf``) in the form's hidden
``csrf_token``. A forged cross-site POST has neither the cookie's value nor our
key. The one-click unsubscribe is exempt: the secret token in its URL is what
authorizes it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from feedsvc.config import Config
from feedsvc.i18n import LOCALES
from feedsvc.model import Subscriber, SubscriberStatus, utcnow
from feedsvc.newsletter import message
from feedsvc.newsletter.mail import SendResult, SendStatus, create_mailer
from feedsvc.newsletter.render import render_confirmation
from feedsvc.newsletter.roster import normalize_email
from feedsvc.newsletter.signing import load_signer
from feedsvc.newsletter.tokens import ExpiredToken, InvalidToken, Purpose, TokenError, Tokens
from feedsvc.store import Store
from feedsvc.store.subscribers import email_key
from feedsvc.web.ratelimit import SlidingWindow

if TYPE_CHECKING:
    from feedsvc.web.app import Site

log = logging.getLogger("feedsvc.web")

CSRF_COOKIE = "feedsvc_csrf"
CSRF_FIELD = "csrf_token"
HONEYPOT = "website"  # a field name bots like to fill; people never see it
NONCE = re.compile(r"[A-Za-z0-9_-]{32}")
MAX_FORM_BYTES = 16_384
MAX_FIELDS = 64
PER_ADDRESS = (5, timedelta(hours=1))
PER_CLIENT = (20, timedelta(hours=1))

Form = dict[str, list[str]]
Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Choices:
    """What a subscriber picks: their categories (config order), schedule and language."""

    categories: tuple[str, ...]
    schedule: str
    locale: str


@dataclass(frozen=True, slots=True)
class FormView:
    """What a subscription form shows: the values to fill in and the errors by field."""

    email: str = ""
    categories: tuple[str, ...] = ()
    schedule: str = ""
    locale: str = ""
    errors: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, subscriber: Subscriber) -> FormView:
        return cls("", subscriber.categories, subscriber.schedule, subscriber.locale)

    @classmethod
    def sent(cls, form: Form, errors: Mapping[str, str], *, email: str = "") -> FormView:
        """The form as submitted, to show again with its errors."""
        categories = tuple(form.get("category", []))
        return cls(email, categories, _first(form, "schedule"), _first(form, "locale"), errors)


class Subscriptions:
    """The routes of the flows above, sharing one token key and one set of limits."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.store: Store = site.store
        self.tokens = Tokens.from_config(site.config)
        self.per_address = SlidingWindow(*PER_ADDRESS)
        self.per_client = SlidingWindow(*PER_CLIENT)
        self.secure_cookie = site.config.site.base_url.startswith("https:")
        self._sending: set[asyncio.Task[None]] = set()

    @property
    def config(self) -> Config:
        """The site's configuration, which a reload of config.yaml may replace."""
        return self.site.config

    def routes(self) -> list[Route]:
        return [
            Route("/subscribe", self.subscribe, methods=["GET", "POST"]),
            Route("/confirm/{token}", self._friendly(self.confirm), methods=["GET"]),
            Route(
                "/preferences/{token}", self._friendly(self.preferences), methods=["GET", "POST"]
            ),
            Route(
                "/unsubscribe/{token}", self._friendly(self.unsubscribe), methods=["GET", "POST"]
            ),
        ]

    # --- pages ---------------------------------------------------------------------------

    def blank_form(self) -> FormView:
        """The sign-up form as first shown: every category ticked, the default schedule."""
        ids = tuple(category.id for category in self.config.categories)
        return FormView(categories=ids, schedule=self.config.newsletter.default_schedule)

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        """Render a page that holds a form: with a CSRF token, its cookie, and no caching."""
        nonce = request.cookies.get(CSRF_COOKIE, "")
        if NONCE.fullmatch(nonce):
            token = self.tokens.csrf_field(nonce)
        else:
            nonce, token = self.tokens.csrf_pair()
        context.setdefault("offered", self._offered())
        response = self.site.render(request, template, status, csrf_token=token, **context)
        response.set_cookie(
            CSRF_COOKIE,
            nonce,
            max_age=int(timedelta(days=1).total_seconds()),
            httponly=True,
            samesite="lax",
            secure=self.secure_cookie,
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    def _offered(self) -> dict[str, Any]:
        return {
            "categories": [(c.id, c.title) for c in self.config.categories],
            "schedules": list(self.config.newsletter.schedules),
            "locales": list(LOCALES),
        }

    def _notice(
        self, request: Request, template: str, status: int = 200, **context: Any
    ) -> Response:
        response = self.site.render(request, template, status, **context)
        response.headers["Cache-Control"] = "no-store"
        return response

    # --- sign up -------------------------------------------------------------------------

    async def subscribe(self, request: Request) -> Response:
        """``POST /subscribe``: check, then answer "check your email" whoever asked."""
        if request.method != "POST":  # GET or HEAD
            return RedirectResponse(self.site.config.site.base_url.rstrip("/") + "/#subscribe", 303)
        form = await read_form(request)
        if not self.per_client.allow(client_address(request), time.monotonic()):
            return self._too_many(request)
        if not self._csrf_ok(request, form):
            return self._forbidden(request)
        if _first(form, HONEYPOT):
            log.info("signup ignored", extra={"fields": {"reason": "honeypot"}})
            return self._check_email(request)
        email, choices, view = self._read_signup(form)
        if email is None or choices is None:
            return self.page(request, "web/index.html", 400, form=view)
        if not self.per_address.allow(email_key(email), time.monotonic()):
            return self._too_many(request)
        subscriber = await run_in_threadpool(self._sign_up, email, choices)
        if subscriber is not None:
            self._send_later(subscriber)
        return self._check_email(request)

    def _read_signup(self, form: Form) -> tuple[str | None, Choices | None, FormView]:
        """The normalized address and the choices, or the form to show again with errors."""
        email_text = _first(form, "email").strip()
        choices, errors = read_choices(self.config, form)
        email: str | None = None
        try:
            email = normalize_email(email_text)
        except ValueError:
            errors["email"] = "Enter a valid email address, such as ten@example.com."
        view = FormView.sent(form, errors, email=email_text[:320])
        return email, (choices if not errors else None), view

    def _sign_up(self, email: str, choices: Choices) -> Subscriber | None:
        """Store the sign-up; return whom to send a confirmation to, if anyone.

        A new address becomes ``pending``. A pending or unsubscribed one takes the
        new choices and is asked to confirm again (only its owner can). An active
        or bounced one is left alone and gets no email.
        """
        subscriber, new = self.store.subscribers.add(
            email,
            categories=choices.categories,
            schedule=choices.schedule,
            locale=choices.locale,
            timezone=self.config.site.timezone,
            confirmed=False,
            now=utcnow(),
        )
        if new:
            log.info("signed up", extra={"fields": {"subscriber": subscriber.id}})
            return subscriber
        if subscriber.status not in (SubscriberStatus.PENDING, SubscriberStatus.UNSUBSCRIBED):
            return None
        return self.store.subscribers.update(
            subscriber.id,
            status=SubscriberStatus.PENDING,
            categories=choices.categories,
            schedule=choices.schedule,
            locale=choices.locale,
        )

    def _send_later(self, subscriber: Subscriber) -> None:
        """Send the confirmation in a task of its own, detached from the request.

        Not a Starlette BackgroundTask: that holds the connection until it ends,
        so the next request on a keep-alive connection would wait for the SMTP
        server, and its delay would tell a new address from a known one. A task
        still running at shutdown is lost; the person can sign up again.
        """
        task = asyncio.get_running_loop().create_task(self._send_confirmation(subscriber))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send_confirmation(self, subscriber: Subscriber) -> None:
        """Runs after the response is sent; a failure is logged, the person may retry."""
        url = self.tokens.link(self.config.site.base_url, Purpose.CONFIRM, subscriber.id)
        try:
            await send_confirmation(self.config, self.store, subscriber, url)
        except Exception:  # the response is gone: all that is left to do is to say so
            log.exception("confirmation failed", extra={"fields": {"subscriber": subscriber.id}})

    def _check_email(self, request: Request) -> Response:
        return self._notice(request, "web/check_email.html")

    # --- token links ---------------------------------------------------------------------

    def _friendly(self, handler: Handler) -> Handler:
        """Turn a bad or expired token into the "invalid or expired link" page (400)."""

        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except TokenError as exc:
                expired = isinstance(exc, ExpiredToken)
                log.info(
                    "bad link",
                    extra={"fields": {"path": request.url.path.split("/")[1], "error": str(exc)}},
                )
                return self._notice(request, "web/invalid_link.html", 400, expired=expired)

        return endpoint

    async def _subscriber(self, request: Request, purpose: Purpose) -> Subscriber:
        """The subscriber a link's token names. Raises TokenError, also when it is gone."""
        subscriber_id = self.tokens.subscriber_id(purpose, request.path_params["token"])
        subscriber = await run_in_threadpool(self.store.subscribers.get, subscriber_id)
        if subscriber is None:
            raise InvalidToken(f"subscriber {subscriber_id} no longer exists")
        return subscriber

    def _links(self, subscriber: Subscriber) -> dict[str, Any]:
        base = self.config.site.base_url
        return {
            "preferences_url": self.tokens.link(base, Purpose.PREFERENCES, subscriber.id),
            "unsubscribe_url": self.tokens.link(base, Purpose.UNSUBSCRIBE, subscriber.id),
        }

    async def confirm(self, request: Request) -> Response:
        """``GET /confirm/TOKEN``: pending becomes active; clicking again changes nothing."""
        subscriber = await self._subscriber(request, Purpose.CONFIRM)
        if subscriber.status is SubscriberStatus.PENDING:
            updated = await run_in_threadpool(
                self.store.subscribers.update,
                subscriber.id,
                status=SubscriberStatus.ACTIVE,
                confirmed_at=utcnow(),
            )
            subscriber = updated or subscriber
            log.info("confirmed", extra={"fields": {"subscriber": subscriber.id}})
        elif subscriber.status is not SubscriberStatus.ACTIVE:
            # An old confirmation link must not undo a later unsubscribe.
            raise InvalidToken(f"subscriber {subscriber.id} is {subscriber.status.value}")
        return self._notice(
            request,
            "web/confirmed.html",
            subscriber=subscriber,
            **self._named(subscriber),
            **self._links(subscriber),
        )

    def _named(self, subscriber: Subscriber) -> dict[str, Any]:
        titles = {c.id: c.title for c in self.config.categories}
        return {"category_titles": [titles.get(c, c) for c in subscriber.categories]}

    async def preferences(self, request: Request) -> Response:
        """``GET/POST /preferences/TOKEN``: show and change categories, schedule, language."""
        subscriber = await self._subscriber(request, Purpose.PREFERENCES)
        if request.method != "POST":  # GET or HEAD
            saved = request.query_params.get("saved") == "1"
            return self._preferences_page(request, subscriber, FormView.of(subscriber), saved=saved)
        form = await read_form(request)
        if not self._csrf_ok(request, form):
            return self._forbidden(request)
        choices, errors = read_choices(self.config, form)
        if errors:
            view = FormView.sent(form, errors)
            return self._preferences_page(request, subscriber, view, status=400)
        await run_in_threadpool(
            self.store.subscribers.update,
            subscriber.id,
            categories=choices.categories,
            schedule=choices.schedule,
            locale=choices.locale,
        )
        log.info("preferences changed", extra={"fields": {"subscriber": subscriber.id}})
        page = self._links(subscriber)["preferences_url"]
        return RedirectResponse(f"{page}?saved=1", status_code=303)

    def _preferences_page(
        self,
        request: Request,
        subscriber: Subscriber,
        view: FormView,
        *,
        status: int = 200,
        saved: bool = False,
    ) -> Response:
        return self.page(
            request,
            "web/preferences.html",
            status,
            form=view,
            subscriber=subscriber,
            saved=saved,
            **self._links(subscriber),
        )

    async def unsubscribe(self, request: Request) -> Response:
        """``GET`` shows a button and changes nothing; ``POST`` (the button or RFC 8058) acts.

        A removed or already unsubscribed subscriber gets the "unsubscribed" page:
        what they asked for is true, and a one-click POST must not fail.
        """
        subscriber_id = self.tokens.subscriber_id(Purpose.UNSUBSCRIBE, request.path_params["token"])
        subscriber = await run_in_threadpool(self.store.subscribers.get, subscriber_id)
        if subscriber is not None and subscriber.status is SubscriberStatus.UNSUBSCRIBED:
            subscriber = None
        if request.method != "POST":  # GET or HEAD
            if subscriber is None:
                return self._notice(request, "web/unsubscribed.html")
            context = self._links(subscriber)
            return self.page(request, "web/unsubscribe.html", subscriber=subscriber, **context)
        form = await read_form(request)
        one_click = is_one_click(form)
        if not (one_click or self._csrf_ok(request, form)):
            return self._forbidden(request)
        if subscriber is not None:
            await run_in_threadpool(
                self.store.subscribers.update, subscriber.id, status=SubscriberStatus.UNSUBSCRIBED
            )
            fields = {"subscriber": subscriber.id, "one_click": one_click}
            log.info("unsubscribed", extra={"fields": fields})
        return self._notice(request, "web/unsubscribed.html")

    # --- refusals ------------------------------------------------------------------------

    def _csrf_ok(self, request: Request, form: Form) -> bool:
        return self.tokens.csrf_matches(_first(form, CSRF_FIELD), request.cookies.get(CSRF_COOKIE))

    def _forbidden(self, request: Request) -> Response:
        log.info("csrf refused", extra={"fields": {"path": request.url.path.split("/")[1]}})
        home = self.config.site.base_url.rstrip("/") + "/"
        referer = request.headers.get("referer", "")
        back = referer if referer.startswith(home) else home  # never a link off-site
        return self._notice(request, "web/forbidden.html", 403, back_url=back)

    def _too_many(self, request: Request) -> Response:
        response = self._notice(request, "web/rate_limited.html", 429)
        response.headers["Retry-After"] = str(int(PER_ADDRESS[1].total_seconds()))
        return response


def read_choices(config: Config, form: Form) -> tuple[Choices, dict[str, str]]:
    """The categories, schedule and language of a submitted form, and errors by field.

    Categories come back in config order whatever order they were sent in; an id
    the config does not know is an error rather than silently dropped.
    """
    known = [category.id for category in config.categories]
    sent = set(form.get("category", []))
    errors: dict[str, str] = {}
    if not sent or not sent <= set(known):
        errors["category"] = "Choose at least one category."
    schedule = _first(form, "schedule")
    if schedule not in config.newsletter.schedules:
        errors["schedule"] = "Choose how often you want the newsletter."
    locale = _first(form, "locale")
    if locale not in LOCALES:
        errors["locale"] = "Choose a language."
    return Choices(tuple(c for c in known if c in sent), schedule, locale), errors


async def read_form(request: Request) -> Form:
    """The fields of a small form POST; anything larger than a form is refused (413)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise HTTPException(413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413)
    return parse_form(request.headers.get("content-type", ""), bytes(body))


def parse_form(content_type: str, body: bytes) -> Form:
    """Fields of a urlencoded or multipart body; a body we cannot read has no fields.

    Our pages post urlencoded forms; multipart is here because RFC 8058's example
    one-click POST, which mail providers copy, is ``multipart/form-data``.
    """
    if content_type.split(";")[0].strip().lower() == "multipart/form-data":
        return _multipart(content_type, body)
    try:
        return parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return {}


def _multipart(content_type: str, body: bytes) -> Form:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    parsed = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    fields: Form = {}
    if not isinstance(parsed, EmailMessage) or not parsed.is_multipart():
        return fields
    for part in list(parsed.iter_parts())[:MAX_FIELDS]:
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields.setdefault(name, []).append(payload.decode("utf-8", "replace").strip())
    return fields


def is_one_click(form: Form) -> bool:
    """Whether the body is RFC 8058's ``List-Unsubscribe=One-Click``."""
    return "One-Click" in form.get("List-Unsubscribe", [])


def client_address(request: Request) -> str:
    """The client's IP; behind a local reverse proxy uvicorn has already read X-Forwarded-For."""
    return request.client.host if request.client else "unknown"


def _first(form: Form, name: str) -> str:
    values = form.get(name)
    return values[0] if values else ""


async def send_confirmation(
    config: Config, store: Store, subscriber: Subscriber, confirm_url: str
) -> SendResult:
    """Email ``subscriber`` the double opt-in link, in their language, through ``mail.backend``.

    ``store`` is unused today; it is in the signature so that a future record of
    sent confirmations (for a resend policy) needs no change at the call sites.
    """
    del store
    sender = parseaddr(config.newsletter.from_)[1]
    name, data = confirmation_message(config, subscriber, confirm_url)
    mailer = create_mailer(config)
    try:
        result = await mailer.send(sender, subscriber.email, data, name=name)
    finally:
        await mailer.close()
    level = logging.INFO if result.status is SendStatus.SENT else logging.WARNING
    fields = {"subscriber": subscriber.id, "status": result.status.value, "detail": result.detail}
    log.log(level, "confirmation sent", extra={"fields": fields})
    return result


def confirmation_message(
    config: Config, subscriber: Subscriber, confirm_url: str
) -> tuple[str, bytes]:
    """The confirmation email's file-safe name (also its Message-ID) and its bytes.

    A one-off email: no List-* headers, but DKIM-signed like the digests when
    ``mail.dkim`` is configured, since inbox providers judge every message.
    """
    domain = parseaddr(config.newsletter.from_)[1].rpartition("@")[2] or "localhost"
    rendered = render_confirmation(
        config=config,
        locale=subscriber.locale,
        categories=subscriber.categories,
        schedule=subscriber.schedule,
    )
    template = message.prepare(
        rendered,
        sender=config.newsletter.from_,
        reply_to=config.newsletter.reply_to,
        list_id=None,
        domain=domain,
        signer=load_signer(config),
    )
    name = f"confirm-{subscriber.id}-{secrets.token_hex(6)}"
    data = template.build(
        to=subscriber.email, message_id=f"<{name}@{domain}>", date=utcnow(), confirm_url=confirm_url
    )
    return name, data
