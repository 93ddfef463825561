"""With ``mail.dkim`` configured, every message verifies: digests and the confirmation email,
through both backends, checked by dkimpy on the exact bytes that reached aiosmtpd or the
outbox, against the public key, with DNS answered by the test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from feedsvc import config as config_module
from feedsvc.config import Config
from feedsvc.errors import ConfigError
from feedsvc.newsletter.mail import SendStatus, create_mailer
from feedsvc.newsletter.preview import reader_for_test, send_test
from feedsvc.newsletter.signing import SIGNED_HEADERS
from feedsvc.schedule import http_server
from feedsvc.store import Store
from tests._dkim import SELECTOR, DkimKey, make_key, signed_headers, verify
from tests._net import free_port
from tests.integration.corpus_site import CONFIG as SITE
from tests.integration.signup_site import NEWSLETTER, Site, post_signup, session
from tests.integration.test_deliver import PERIOD, deliverer, store_news, subscribe
from tests.smtpserver import SmtpServer

DOMAIN = "baohatinh.example"
MAIL = """\
mail:
  backend: {backend}
  smtp:
    host: 127.0.0.1
    port: {smtp_port}
    starttls: false
  rate_per_second: 1000
  dkim:
    domain: {domain}
    selector: {selector}
    private_key_file: {key}
"""
Mailbox = Callable[[], list[bytes]]


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> DkimKey:
    return make_key(tmp_path_factory.mktemp("dkim"))


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    async with SmtpServer() as server:
        yield server


@pytest.fixture(params=["smtp", "outbox"])
def config(
    request: pytest.FixtureRequest, tmp_path: Path, key: DkimKey, smtp: SmtpServer
) -> Config:
    path = tmp_path / "config.yaml"
    site = SITE.format(port=free_port(), db=tmp_path / "feedsvc.db")
    mail = MAIL.format(
        backend=request.param,
        smtp_port=smtp.port,
        domain=DOMAIN,
        selector=SELECTOR,
        key=key.private_key_file,
    )
    path.write_text(site + NEWSLETTER + mail, encoding="utf-8")
    return config_module.load(path)


@pytest.fixture
def mailbox(config: Config, smtp: SmtpServer) -> Mailbox:
    """The raw bytes of every message delivered, as the server or the outbox holds them."""

    def messages() -> list[bytes]:
        if config.mail.backend == "smtp":
            return [received.data for received in smtp.messages]
        return [path.read_bytes() for path in sorted(config.outbox_path.glob("*.eml"))]

    return messages


@pytest.fixture
def store(config: Config) -> Iterator[Store]:
    opened = Store.open(config.database_url)
    yield opened
    opened.close()


def assert_signed(message: bytes, key: DkimKey) -> None:
    assert message.startswith(b"DKIM-Signature: ") or b"\nDKIM-Signature: " in message
    assert verify(message, key, DOMAIN)
    covered = signed_headers(message)
    for name in (
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "list-id",
    ):
        assert name in covered, name
    assert set(covered) == {name.lower() for name in SIGNED_HEADERS}


async def test_every_digest_is_signed_and_verifies(
    config: Config, store: Store, key: DkimKey, mailbox: Mailbox
) -> None:
    store_news(config, store)
    for name in ("an", "binh", "chi"):
        subscribe(store, f"{name}@example.vn")
    mailer = create_mailer(config)
    sender = deliverer(config, store, mailer)
    sender.plan("daily")
    try:
        assert (await sender.send("daily")).states == {"sent": 3}
    finally:
        await mailer.close()
    messages = mailbox()
    assert len(messages) == 3
    for message in messages:
        assert_signed(message, key)
        assert b"\r\nList-Unsubscribe: <http" in message


async def test_a_digest_changed_on_the_way_does_not_verify(
    config: Config, store: Store, key: DkimKey, mailbox: Mailbox
) -> None:
    store_news(config, store)
    subscribe(store, "an@example.vn")
    mailer = create_mailer(config)
    sender = deliverer(config, store, mailer)
    sender.plan("daily")
    try:
        await sender.send("daily")
    finally:
        await mailer.close()
    [message] = mailbox()
    assert verify(message, key, DOMAIN)
    head, body = message.split(b"\r\n\r\n", 1)
    forged_link = head.replace(b"/unsubscribe/", b"/unsubscribe/x", 1) + b"\r\n\r\n" + body
    assert not verify(forged_link, key, DOMAIN)
    # A second List-Unsubscribe or From added above ours: the signature covers one more.
    for extra in (b"List-Unsubscribe: <https://evil.example/u>", b"From: boss@example.vn"):
        assert not verify(extra + b"\r\n" + message, key, DOMAIN), extra
    assert not verify(head + b"\r\n\r\n" + body.replace(b"A", b"B", 1), key, DOMAIN)


async def test_the_confirmation_email_is_signed_and_verifies(
    config: Config, store: Store, key: DkimKey, mailbox: Mailbox
) -> None:
    server = http_server(config, store)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        site = Site(f"http://127.0.0.1:{config.http.port}", config, store)
        async with session() as browser:
            status, _ = await post_signup(browser, site, "moi@example.vn")
        assert status == 200
        for _ in range(500):
            if mailbox():
                break
            await asyncio.sleep(0.02)
    finally:
        server.should_exit = True
        await task
    [message] = mailbox()
    assert b"\r\nList-Id:" not in message.split(b"\r\n\r\n", 1)[0]  # a one-off email
    assert verify(message, key, DOMAIN)
    covered = signed_headers(message)
    for name in ("from", "to", "subject", "date", "message-id"):
        assert name in covered


@pytest.mark.parametrize("problem", ["missing", "not a key"])
async def test_an_unusable_key_is_one_line_and_leaves_the_digests_to_send(
    config: Config, store: Store, key: DkimKey, mailbox: Mailbox, problem: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.pem"
    if problem == "not a key":
        bad.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    assert config.mail.dkim is not None
    broken = config.model_copy(
        update={
            "mail": config.mail.model_copy(
                update={"dkim": config.mail.dkim.model_copy(update={"private_key_file": bad})}
            )
        }
    )
    store_news(broken, store)
    subscribe(store, "an@example.vn")
    mailer = create_mailer(broken)
    sender = deliverer(broken, store, mailer)
    sender.plan("daily")
    try:
        with pytest.raises(ConfigError) as raised:
            await sender.send("daily")
        assert str(raised.value).count("\n") == 0
        assert f"mail.dkim.private_key_file: {bad}" in str(raised.value).replace("cannot read ", "")
        assert store.deliveries.counts("daily") == {"pending": 1}  # nothing stuck in sending
        assert mailbox() == []
        assert (await deliverer(config, store, mailer).send("daily")).states == {"sent": 1}
    finally:
        await mailer.close()
    [message] = mailbox()
    assert verify(message, key, DOMAIN)


async def test_a_test_email_is_signed_too(
    config: Config, store: Store, key: DkimKey, mailbox: Mailbox
) -> None:
    store_news(config, store)
    reader = reader_for_test(config, "daily", "bien.tap@example.vn", [], "vi")
    mailer = create_mailer(config)
    try:
        now = PERIOD - timedelta(minutes=30)  # the upcoming 07:00 edition holds the news
        _, result = await send_test(config, store, mailer, "daily", reader, now, DOMAIN)
    finally:
        await mailer.close()
    assert result is not None
    assert result.status is SendStatus.SENT, result.detail
    [message] = mailbox()
    assert_signed(message, key)
