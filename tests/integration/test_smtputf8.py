"""Internationalized addresses against servers with and without SMTPUTF8 (RFC 6531).

An internationalized domain travels as its A-label (IDNA 2008), which every server
takes; only a non-ASCII local part needs SMTPUTF8. When the server does not offer
it, that one delivery fails with a reason and is not the subscriber's bounce.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from feedsvc.config import Config
from feedsvc.model import SubscriberStatus
from feedsvc.newsletter.mail import OutboxMailer, SendStatus, SmtpMailer, create_mailer
from feedsvc.store import Store
from tests.integration.test_deliver import deliverer, make_config, store_news, subscribe
from tests.integration.test_mail import settings
from tests.smtpserver import SmtpServer

SENDER = "bantin@example.vn"
IDN = "nguyen@bücher.example"
IDN_ASCII = "nguyen@xn--bcher-kva.example"
UTF8_LOCAL = "nguyễn@example.vn"


def message(to: str) -> bytes:
    return (
        f"From: {SENDER}\r\nTo: {to}\r\nSubject: Tin mới\r\nMessage-ID: <m@example.vn>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nXin chào\r\n"
    ).encode()


@pytest.fixture
async def plain_server() -> AsyncIterator[SmtpServer]:
    """A server that does not offer SMTPUTF8."""
    async with SmtpServer(smtputf8=False) as server:
        yield server


@pytest.fixture
async def utf8_server() -> AsyncIterator[SmtpServer]:
    async with SmtpServer(smtputf8=True) as server:
        yield server


async def test_an_idn_domain_goes_as_its_a_label_to_a_server_without_smtputf8(
    plain_server: SmtpServer,
) -> None:
    mailer = SmtpMailer(settings(plain_server.port), password=None)
    try:
        result = await mailer.send(SENDER, IDN, message(IDN), name="1")
    finally:
        await mailer.close()
    assert result.status is SendStatus.SENT, result.detail
    [received] = plain_server.messages
    assert received.recipients == (IDN_ASCII,)
    assert "SMTPUTF8" not in received.mail_options


@pytest.mark.parametrize(
    ("domain", "a_label"),
    [
        ("fuß.example", "xn--fu-hia.example"),  # IDNA 2003 (Python's codec) says fuss.example
        ("Bücher.Example", "xn--bcher-kva.example"),  # UTS 46 mapping: case folded first
        ("đà-nẵng.example", "xn---nng-zna70au54p.example"),
    ],
)
async def test_domains_are_converted_by_idna_2008(
    plain_server: SmtpServer, domain: str, a_label: str
) -> None:
    mailer = SmtpMailer(settings(plain_server.port), password=None)
    try:
        result = await mailer.send(SENDER, f"an@{domain}", message("an@x"), name="1")
    finally:
        await mailer.close()
    assert result.status is SendStatus.SENT, result.detail
    assert plain_server.messages[0].recipients == (f"an@{a_label}",)


async def test_a_non_ascii_local_part_without_smtputf8_is_undeliverable_not_a_bounce(
    plain_server: SmtpServer,
) -> None:
    mailer = SmtpMailer(settings(plain_server.port), password=None)
    try:
        result = await mailer.send(SENDER, UTF8_LOCAL, message(UTF8_LOCAL), name="1")
        after = await mailer.send(SENDER, "an@example.vn", message("an@example.vn"), name="2")
    finally:
        await mailer.close()
    assert result.status is SendStatus.UNDELIVERABLE
    assert "SMTPUTF8" in result.detail
    assert UTF8_LOCAL in result.detail
    assert after.status is SendStatus.SENT  # the connection was not spoiled
    assert [m.recipients for m in plain_server.messages] == [("an@example.vn",)]
    assert plain_server.connections == 1


async def test_a_non_ascii_local_part_goes_with_smtputf8_where_offered(
    utf8_server: SmtpServer,
) -> None:
    mailer = SmtpMailer(settings(utf8_server.port), password=None)
    try:
        local = await mailer.send(SENDER, UTF8_LOCAL, message(UTF8_LOCAL), name="1")
        idn = await mailer.send(SENDER, IDN, message(IDN), name="2")
    finally:
        await mailer.close()
    assert (local.status, idn.status) == (SendStatus.SENT, SendStatus.SENT)
    first, second = utf8_server.messages
    assert first.recipients == (UTF8_LOCAL,)  # as the subscriber wrote it
    assert "SMTPUTF8" in first.mail_options
    assert second.recipients == (IDN_ASCII,)  # needs no SMTPUTF8: none asked for
    assert "SMTPUTF8" not in second.mail_options


async def test_the_outbox_records_the_envelope_address_as_smtp_would(tmp_path: Path) -> None:
    outbox = OutboxMailer(tmp_path)
    assert (await outbox.send(SENDER, IDN, message(IDN), name="1")).status is SendStatus.SENT
    assert (await outbox.send(SENDER, UTF8_LOCAL, message(UTF8_LOCAL), name="2")).status is (
        SendStatus.SENT
    )
    first, second = outbox.messages()
    assert first["Delivered-To"] == IDN_ASCII
    assert second["Delivered-To"] == UTF8_LOCAL


# -- a digest run ---------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'feedsvc.db'}")
    yield opened
    opened.close()


async def send_digests(config: Config, store: Store) -> dict[str, int]:
    mailer = create_mailer(config)
    sender = deliverer(config, store, mailer)
    sender.plan("daily")
    try:
        return (await sender.send("daily")).states
    finally:
        await mailer.close()


async def test_a_digest_run_against_a_server_without_smtputf8(
    tmp_path: Path, plain_server: SmtpServer, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(tmp_path, port=plain_server.port)
    store_news(config, store)
    idn = subscribe(store, IDN)
    local = subscribe(store, UTF8_LOCAL)
    with caplog.at_level(logging.INFO, logger="feedsvc.digest"):
        assert await send_digests(config, store) == {"sent": 1, "failed": 1}
    [received] = plain_server.messages
    assert received.recipients == (IDN_ASCII,)
    head, _ = received.data.split(b"\r\n\r\n", 1)
    assert f"\r\nTo: {IDN_ASCII}\r\n".encode() in head  # readable by any server on the way
    head.decode("ascii")
    [failure] = [r for r in caplog.records if getattr(r, "fields", {}).get("state") == "failed"]
    assert "SMTPUTF8" in failure.fields["error"]  # type: ignore[attr-defined]
    for subscriber_id in (idn, local):
        subscriber = store.subscribers.get(subscriber_id)
        assert subscriber is not None
        assert subscriber.bounce_count == 0
        assert subscriber.status is SubscriberStatus.ACTIVE


async def test_a_digest_run_against_a_server_with_smtputf8(
    tmp_path: Path, utf8_server: SmtpServer, store: Store
) -> None:
    config = make_config(tmp_path, port=utf8_server.port)
    store_news(config, store)
    subscribe(store, UTF8_LOCAL)
    assert await send_digests(config, store) == {"sent": 1}
    [received] = utf8_server.messages
    assert received.recipients == (UTF8_LOCAL,)
    assert f"\r\nTo: {UTF8_LOCAL}\r\n".encode() in received.data  # RFC 6532, as written
