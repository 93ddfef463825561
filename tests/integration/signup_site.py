"""The sign-up site as the HTTP tests see it: a real uvicorn on 127.0.0.1, its store, its mailbox.

Mail goes to the outbox backend, which is also the test's mailbox. Shared by the
tests of the web flows (test_subscribe.py), of consent (test_consent_web.py) and of
sign-up timing (test_signup_timing.py).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from pathlib import Path

import aiohttp

from feedsvc import config as config_module
from feedsvc.config import Config
from feedsvc.model import Subscriber, utcnow
from feedsvc.newsletter.mail import OutboxMailer
from feedsvc.newsletter.tokens import Purpose, Tokens
from feedsvc.schedule import http_server
from feedsvc.store import Store
from tests._net import free_port
from tests.integration.corpus_site import CONFIG

NEWSLETTER = """\
newsletter:
  from: "Bản tin Hà Tĩnh <bantin@baohatinh.example>"
  schedules:
    daily: "0 7 * * *"
    weekly: "0 7 * * 1"
"""
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
CONFIRM_LINK = re.compile(r"http://127\.0\.0\.1:\d+/confirm/[A-Za-z0-9._-]+")
LINK = re.compile(r'href="(http://127\.0\.0\.1:\d+/(?:preferences|unsubscribe)/[A-Za-z0-9._-]+)"')


class Site:
    """The running service as the tests see it: its address, config, store and mailbox."""

    def __init__(self, base: str, config: Config, store: Store) -> None:
        self.base = base
        self.config = config
        self.store = store
        self.tokens = Tokens.from_config(config)
        self.outbox = OutboxMailer(config.outbox_path)

    def link(self, purpose: Purpose, subscriber: Subscriber) -> str:
        return self.tokens.link(self.base, purpose, subscriber)

    def mail(self) -> list[EmailMessage]:
        return self.outbox.messages() if self.outbox.directory.exists() else []

    async def wait_for_mail(self, count: int, timeout: float = 10) -> list[EmailMessage]:
        """The outbox once it holds ``count`` messages (sending runs after the response)."""
        deadline = time.monotonic() + timeout
        while len(messages := self.mail()) < count:
            assert time.monotonic() < deadline, f"{len(messages)} of {count} emails arrived"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # and no more than that
        return self.mail()

    def add_active(self, email: str = "doc.gia@example.vn") -> Subscriber:
        subscriber, _ = self.store.subscribers.add(
            email,
            categories=("xa-hoi",),
            schedule="daily",
            locale="vi",
            timezone="Asia/Ho_Chi_Minh",
            confirmed=True,
            now=utcnow(),
        )
        return subscriber


def write_config(tmp_path: Path, port: int, database_url: str | None = None) -> Config:
    path = tmp_path / "config.yaml"
    text = CONFIG.format(port=port, db=tmp_path / "feedsvc.db") + NEWSLETTER
    if database_url is not None:
        text = text.replace(f"sqlite:///{tmp_path / 'feedsvc.db'}", database_url)
    path.write_text(text, encoding="utf-8")
    return config_module.load(path)


@asynccontextmanager
async def running_site(
    tmp_path: Path, database_url: str | None = None, *, port: int | None = None
) -> AsyncIterator[Site]:
    """uvicorn serving the app on a free port (or ``port``), with the store it uses."""
    port = port or free_port()
    config = write_config(tmp_path, port, database_url)
    store = Store.open(config.database_url)
    server = http_server(config, store)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield Site(f"http://127.0.0.1:{port}", config, store)
    finally:
        server.should_exit = True
        await task
        store.close()


def session() -> aiohttp.ClientSession:
    """A browser-like client: keeps cookies (also for a bare IP address), Vietnamese first."""
    jar = aiohttp.CookieJar(unsafe=True)
    return aiohttp.ClientSession(cookie_jar=jar, headers={"Accept-Language": "vi,en;q=0.5"})


async def form_token(client: aiohttp.ClientSession, url: str) -> str:
    """Open a page with a form, as a browser would: the CSRF cookie and the hidden field."""
    async with client.get(url) as response:
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-store"
        match = CSRF_FIELD.search(await response.text())
    assert match, "the page has no csrf_token field"
    return match.group(1)


def signup(token: str, email: str, **changes: object) -> list[tuple[str, str]]:
    fields: dict[str, object] = {
        "csrf_token": token,
        "email": email,
        "category": ["xa-hoi", "tre-em"],
        "schedule": "weekly",
        "locale": "vi",
        "website": "",
    }
    fields.update(changes)
    return [
        (name, str(item))
        for name, value in fields.items()
        if value is not None
        for item in (value if isinstance(value, list) else [value])
    ]


async def post_signup(
    client: aiohttp.ClientSession, site: Site, email: str, **changes: object
) -> tuple[int, str]:
    token = await form_token(client, f"{site.base}/")
    async with client.post(f"{site.base}/subscribe", data=signup(token, email, **changes)) as r:
        return r.status, await r.text()


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert isinstance(body, EmailMessage)
    return str(body.get_content())


def confirm_link_in(message: EmailMessage) -> str:
    [link] = set(CONFIRM_LINK.findall(text_of(message)))
    return link


async def click_confirm(client: aiohttp.ClientSession, link: str) -> tuple[int, str]:
    """Open a confirmation link as a person does: the page, then its button if it has one."""
    async with client.get(link) as response:
        status, page = response.status, await response.text()
    match = CSRF_FIELD.search(page)
    if status != 200 or match is None:
        return status, page
    async with client.post(link, data={"csrf_token": match.group(1)}) as response:
        return response.status, await response.text()


def links_on(page: str) -> dict[str, str]:
    """The preferences and unsubscribe links a page shows, by route."""
    return {url.split("/")[3]: url for url in LINK.findall(page)}
