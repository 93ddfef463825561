"""The subscriber's web flows: sign up, confirm, change preferences, unsubscribe.

Three promises shape this module:

- **Nobody learns who subscribes.** ``POST /subscribe`` answers with the same
  bytes for a new address, a known one and a bot caught by the honeypot, and
  takes the same time: the sign-up does the same database work whoever asks,
  and the confirmation email is sent from a queue after the response
  (newsletter.consent, newsletter.confirmations).
- **A GET never changes a subscription**, ``/confirm`` included: mail scanners
  prefetch the links of every email. The confirm page has one button.
- **Unsubscribing always works**, with the page's button or with the RFC 8058
  one-click POST that mail providers send without cookies.

CSRF is a signed double submit: a random value in an HttpOnly, SameSite=Lax
cookie, and the same value signed (purpose ``csrf``) in the form's hidden
``csrf_token``. A forged cross-site POST has neither the cookie's value nor our
key. The one-click unsubscribe is exempt: the secret token in its URL is what
authorizes it.

The rules themselves (who may confirm, what a sign-up changes, the limits per
mailbox, which links still name someone) are newsletter.consent's; this module
only translates between HTTP and it.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from feedsvc.config import Config
from feedsvc.i18n import LOCALES
from feedsvc.lease import process_owner
from feedsvc.model import Subscriber, SubscriberStatus, utcnow
from feedsvc.newsletter import consent
from feedsvc.newsletter.confirmations import ConfirmationSender
from feedsvc.newsletter.roster import Signup, check_address
from feedsvc.newsletter.tokens import ExpiredToken, Purpose, TokenError, Tokens
from feedsvc.newsletter.topics import TopicError, check_topics
from feedsvc.store import Store
from feedsvc.web.ratelimit import SlidingWindow

if TYPE_CHECKING:
    from feedsvc.web.app import Site

log = logging.getLogger("feedsvc.web")

CSRF_COOKIE = "feedsvc_csrf"
CSRF_FIELD = "csrf_token"
TOPICS_FIELD = "topics"  # a text area, one topic a line (newsletter.topics)
HONEYPOT = "website"  # a field name bots like to fill; people never see it
NONCE = re.compile(r"[A-Za-z0-9_-]{32}")
MAX_FORM_BYTES = 16_384
MAX_FIELDS = 64
PER_CLIENT = (20, timedelta(hours=1))

Form = dict[str, list[str]]
Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Choices:
    """What a subscriber picks: their categories (config order), schedule, language, topics."""

    categories: tuple[str, ...]
    schedule: str
    locale: str
    topics: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FormView:
    """What a subscription form shows: the values to fill in and the errors by field."""

    email: str = ""
    categories: tuple[str, ...] = ()
    schedule: str = ""
    locale: str = ""
    errors: Mapping[str, str] = field(default_factory=dict)
    topics: str = ""  # the text area: one topic a line

    @classmethod
    def of(cls, subscriber: Subscriber) -> FormView:
        topics = "\n".join(subscriber.topics)
        return cls("", subscriber.categories, subscriber.schedule, subscriber.locale, topics=topics)

    @classmethod
    def sent(cls, form: Form, errors: Mapping[str, str], *, email: str = "") -> FormView:
        """The form as submitted, to show again with its errors."""
        categories = tuple(form.get("category", []))
        schedule, locale = _first(form, "schedule"), _first(form, "locale")
        topics = "\n".join(form.get(TOPICS_FIELD, []))[:MAX_FORM_BYTES]
        return cls(email, categories, schedule, locale, errors, topics)


class Subscriptions:
    """The routes of the flows above, sharing one token key and one set of limits."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.store: Store = site.store
        self.tokens = Tokens.from_config(site.config)
        self.per_client = SlidingWindow(*PER_CLIENT)
        self.secure_cookie = site.config.site.base_url.startswith("https:")
        self.sender = ConfirmationSender(
            lambda: site.config, site.store, self.tokens, process_owner()
        )

    @property
    def config(self) -> Config:
        """The site's configuration, which a reload of config.yaml may replace."""
        return self.site.config

    def routes(self) -> list[Route]:
        return [
            Route("/subscribe", self.subscribe, methods=["GET", "POST"]),
            Route("/confirm/{token}", self._friendly(self.confirm), methods=["GET", "POST"]),
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
        signup, view = self._read_signup(form)
        if signup is None:
            return self.page(request, "web/index.html", 400, form=view)
        if not await run_in_threadpool(self._sign_up, signup):
            return self._too_many(request)
        self.sender.nudge()  # known or new: the queue decides whether anything is sent
        return self._check_email(request, smtputf8=signup.smtputf8)

    def _read_signup(self, form: Form) -> tuple[Signup | None, FormView]:
        """The sign-up as asked, or None and the form to show again with errors."""
        email_text = _first(form, "email").strip()
        choices, errors = read_choices(self.config, form)
        view = FormView.sent(form, errors, email=email_text[:320])
        try:
            address = check_address(email_text)
        except ValueError:
            errors["email"] = "Enter a valid email address, such as ten@example.com."
            return None, view
        if errors:
            return None, view
        signup = Signup(
            address.email,
            choices.categories,
            choices.schedule,
            choices.locale,
            address.smtputf8,
            choices.topics,
        )
        return signup, view

    def _sign_up(self, signup: Signup) -> bool:
        """Store the sign-up and queue its email; False when its mailbox is at its limit."""
        try:
            consent.sign_up(self.config, self.store, signup, origin="web", now=utcnow())
        except consent.ConsentError:
            log.info("signup limited", extra={"fields": {"reason": "mailbox"}})
            return False
        return True

    def _check_email(self, request: Request, *, smtputf8: bool = False) -> Response:
        return self._notice(request, "web/check_email.html", smtputf8=smtputf8)

    # --- token links ---------------------------------------------------------------------

    def _friendly(self, handler: Handler) -> Handler:
        """Turn a bad or expired token into the "invalid or expired link" page (400).

        So does a consent action refused meanwhile (unsubscribed between the page
        and its button): the link no longer does anything.
        """

        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except (TokenError, consent.ConsentError) as exc:
                expired = isinstance(exc, ExpiredToken)
                log.info(
                    "bad link",
                    extra={"fields": {"path": request.url.path.split("/")[1], "error": str(exc)}},
                )
                return self._notice(request, "web/invalid_link.html", 400, expired=expired)

        return endpoint

    async def _subscriber(self, request: Request, purpose: Purpose) -> Subscriber:
        """The subscriber a link's token names. Raises TokenError, also when it is gone."""
        token = request.path_params["token"]
        return await run_in_threadpool(consent.linked, self.store, self.tokens, purpose, token)

    def _links(self, subscriber: Subscriber) -> dict[str, Any]:
        base = self.config.site.base_url
        return {
            "preferences_url": self.tokens.link(base, Purpose.PREFERENCES, subscriber),
            "unsubscribe_url": self.tokens.link(base, Purpose.UNSUBSCRIBE, subscriber),
        }

    async def confirm(self, request: Request) -> Response:
        """``GET`` shows a button and changes nothing; its ``POST`` makes pending active.

        Only a link of the subscriber's current sign-up works (its key); an
        unsubscribed or bounced subscriber's link confirms nothing.
        """
        subscriber = consent.confirmable(await self._subscriber(request, Purpose.CONFIRM))
        if request.method != "POST" and subscriber.status is SubscriberStatus.PENDING:
            # The form posts the very token it came with: a new one would last 7 more days.
            url = f"{self.config.site.base_url.rstrip('/')}/confirm/{request.path_params['token']}"
            named = self._named(subscriber)
            return self.page(
                request, "web/confirm.html", subscriber=subscriber, confirm_url=url, **named
            )
        if request.method == "POST":
            if not self._csrf_ok(request, await read_form(request)):
                return self._forbidden(request)
            subscriber, _ = await run_in_threadpool(
                consent.confirm, self.store, subscriber, utcnow()
            )
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
            functools.partial(
                consent.change_preferences,
                self.store,
                subscriber,
                categories=choices.categories,
                schedule=choices.schedule,
                locale=choices.locale,
                topics=choices.topics,
            )
        )
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

        An already unsubscribed subscriber gets the "unsubscribed" page: what they
        asked for is true, and a one-click POST must not fail. A link that names
        nobody (a removed subscriber) gets the invalid-link page, like any other.
        """
        subscriber = await self._subscriber(request, Purpose.UNSUBSCRIBE)
        gone = subscriber.status is SubscriberStatus.UNSUBSCRIBED
        if request.method != "POST":  # GET or HEAD
            if gone:
                return self._notice(request, "web/unsubscribed.html")
            context = self._links(subscriber)
            return self.page(request, "web/unsubscribe.html", subscriber=subscriber, **context)
        form = await read_form(request)
        one_click = is_one_click(form)
        if not (one_click or self._csrf_ok(request, form)):
            return self._forbidden(request)
        origin = "one-click" if one_click else "web"
        await run_in_threadpool(consent.unsubscribe, self.store, subscriber, origin=origin)
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
        window = max(PER_CLIENT[1], consent.SIGNUPS_PER_MAILBOX[1])
        response.headers["Retry-After"] = str(int(window.total_seconds()))
        return response


def read_choices(config: Config, form: Form) -> tuple[Choices, dict[str, str]]:
    """The categories, schedule, language and topics of a submitted form, and errors by field.

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
    try:
        topics = check_topics(form.get(TOPICS_FIELD, []))
    except TopicError as exc:
        errors[TOPICS_FIELD], topics = exc.reason, ()
    return Choices(tuple(c for c in known if c in sent), schedule, locale, topics), errors


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
