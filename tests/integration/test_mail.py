"""The mail backends against a real SMTP server on 127.0.0.1 (tests/smtpserver.py) and a folder.

Each SMTP outcome must end in the status that makes delivery exactly-once, and
the server's mailbox must show nothing lost and nothing doubled.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from aiosmtplib.protocol import SMTPProtocol

from feedsvc import config
from feedsvc.errors import ConfigError
from feedsvc.newsletter.mail import (
    OutboxMailer,
    SendResult,
    SendStatus,
    SmtpMailer,
    create_mailer,
)
from tests.smtpserver import HOST, Fault, SmtpServer, ThreadedSmtpServer

SENDER = "bantin@example.vn"
MakeMailer = Callable[..., SmtpMailer]


def message(recipient: str, subject: str = "Bản tin Hà Tĩnh — 28/11", body: str = "") -> bytes:
    mail = EmailMessage()
    mail["From"] = f"Bản tin Hà Tĩnh <{SENDER}>"
    mail["To"] = recipient
    mail["Subject"] = subject
    mail["Message-ID"] = f"<{recipient.split('@')[0]}.{time.monotonic_ns()}@example.vn>"
    mail.set_content(
        body or "Trẻ em: Hội An đón du khách trở lại.\n.một dòng bắt đầu bằng dấu chấm\n"
    )
    return mail.as_bytes(policy=SMTP_POLICY)


def settings(
    port: int, *, concurrency: int = 1, rate: float = 1000.0, timeout: float = 5.0, **smtp: Any
) -> config.Mail:
    options = {"host": HOST, "port": port, "starttls": False, **smtp}
    return config.Mail(
        backend="smtp",
        smtp=config.Smtp(timeout=timedelta(seconds=timeout), **options),
        concurrency=concurrency,
        rate_per_second=rate,
    )


@pytest.fixture
async def server() -> AsyncIterator[SmtpServer]:
    async with SmtpServer() as running:
        yield running


@pytest.fixture
async def make_mailer() -> AsyncIterator[MakeMailer]:
    """Builds `SmtpMailer`s for a server; closes them all after the test."""
    made: list[SmtpMailer] = []

    def make(server: SmtpServer, password: str | None = None, **options: Any) -> SmtpMailer:
        context = (
            server.client_ssl_context() if options.get("starttls") or options.get("tls") else None
        )
        mailer = SmtpMailer(
            settings(server.port, **options), password=password, ssl_context=context
        )
        made.append(mailer)
        return mailer

    yield make
    for mailer in made:
        await mailer.close()


async def send(mailer: SmtpMailer, recipient: str, data: bytes | None = None) -> SendResult:
    return await mailer.send(SENDER, recipient, data or message(recipient), name="1")


# -- each outcome ------------------------------------------------------------------------


async def test_accepted_message_is_sent_once_with_its_bytes(
    server: SmtpServer, make_mailer: MakeMailer
) -> None:
    data = message("an@example.vn")
    result = await send(make_mailer(server), "an@example.vn", data)
    assert result.status is SendStatus.SENT
    assert result.detail.startswith("250 ")
    [received] = server.received("an@example.vn")
    assert received.sender == SENDER
    assert received.data == data  # dot-stuffing undone by the server: byte for byte
    assert b"\r\n.m" in received.data


async def test_bare_newlines_are_sent_as_crlf(server: SmtpServer, make_mailer: MakeMailer) -> None:
    data = b"Subject: x\n\nline one\nline two\r\n.dot\rend"
    assert (await send(make_mailer(server), "an@example.vn", data)).status is SendStatus.SENT
    [received] = server.received("an@example.vn")
    assert received.data == b"Subject: x\r\n\r\nline one\r\nline two\r\n.dot\r\nend\r\n"


async def test_421_at_rcpt_is_retry_and_the_next_message_reconnects(
    server: SmtpServer, make_mailer: MakeMailer
) -> None:
    mailer = make_mailer(server)
    server.script(Fault.CLOSING_AT_RCPT, recipient="an@example.vn", times=1)
    result = await send(mailer, "an@example.vn")
    assert result == SendResult(SendStatus.RETRY, "421 4.3.2 Service closing transmission channel")
    assert (await send(mailer, "binh@example.vn")).status is SendStatus.SENT
    assert (await send(mailer, "an@example.vn")).status is SendStatus.SENT  # the retry
    assert server.connections == 2
    assert server.recipients == {"an@example.vn": 1, "binh@example.vn": 1}


@pytest.mark.parametrize("fault", [Fault.CLOSING_AT_MAIL, Fault.CLOSING_AT_DATA])
async def test_421_at_mail_or_data_is_retry(
    server: SmtpServer, make_mailer: MakeMailer, fault: Fault
) -> None:
    mailer = make_mailer(server)
    server.script(fault, times=1)
    result = await send(mailer, "an@example.vn")
    assert (result.status, result.detail[:4]) == (SendStatus.RETRY, "421 ")
    assert (await send(mailer, "an@example.vn")).status is SendStatus.SENT
    assert server.recipients == {"an@example.vn": 1}
    assert server.connections == 2


async def test_451_at_rcpt_is_retry(server: SmtpServer, make_mailer: MakeMailer) -> None:
    server.script(Fault.TRY_LATER_AT_RCPT, recipient="an@example.vn")
    result = await send(make_mailer(server), "an@example.vn")
    assert (result.status, result.detail[:10]) == (SendStatus.RETRY, "451 4.2.0 ")
    assert server.messages == []


async def test_451_at_data_is_retry_and_the_connection_is_kept(
    server: SmtpServer, make_mailer: MakeMailer
) -> None:
    mailer = make_mailer(server)
    server.script(Fault.TRY_LATER_AT_DATA, recipient="an@example.vn", times=1)
    result = await send(mailer, "an@example.vn")
    assert (result.status, result.detail[:10]) == (SendStatus.RETRY, "451 4.3.0 ")
    assert server.messages == []
    assert (await send(mailer, "an@example.vn")).status is SendStatus.SENT
    assert server.recipients == {"an@example.vn": 1}
    assert server.connections == 1


async def test_550_at_rcpt_is_permanent_and_the_connection_is_reset_for_the_next(
    server: SmtpServer, make_mailer: MakeMailer
) -> None:
    mailer = make_mailer(server)
    server.script(Fault.REJECT_AT_RCPT, recipient="nobody@example.vn")
    result = await send(mailer, "nobody@example.vn")
    assert result == SendResult(SendStatus.PERMANENT, "550 5.1.1 User unknown")
    assert (await send(mailer, "an@example.vn")).status is SendStatus.SENT
    [received] = server.messages
    assert received.recipients == ("an@example.vn",)  # RSET cleared the refused envelope
    assert server.connections == 1


async def test_drop_mid_data_is_retry_and_nothing_is_stored(
    server: SmtpServer, make_mailer: MakeMailer
) -> None:
    mailer = make_mailer(server)
    server.script(Fault.DROP_MID_DATA, recipient="an@example.vn", times=1)
    # Larger than loopback's socket buffers, so the drop comes while it is still sending.
    big = b"Subject: big\r\n\r\n" + b"Tin dai.\r\n" * 900_000
    result = await send(mailer, "an@example.vn", big)
    assert result.status is SendStatus.RETRY, result.detail
    assert "message not sent" in result.detail
    assert server.messages == []
    assert (await send(mailer, "an@example.vn")).status is SendStatus.SENT
    assert server.recipients == {"an@example.vn": 1}


async def test_drop_before_the_final_reply_is_unknown(
    server: SmtpServer, make_mailer: MakeMailer
) -> None:
    mailer = make_mailer(server)
    server.script(Fault.DROP_BEFORE_REPLY, recipient="an@example.vn", times=1)
    result = await send(mailer, "an@example.vn")
    assert result.status is SendStatus.UNKNOWN
    assert result.detail.startswith("connection lost after the message was sent")
    assert (await send(mailer, "binh@example.vn")).status is SendStatus.SENT


async def test_no_reply_within_the_timeout_is_unknown_although_the_server_has_it(
    server: SmtpServer, make_mailer: MakeMailer
) -> None:
    mailer = make_mailer(server, timeout=0.2)
    server.delay = 0.6
    result = await send(mailer, "an@example.vn")
    assert result.status is SendStatus.UNKNOWN
    assert result.detail.startswith("timed out after the message was sent")
    server.delay = 0
    for _ in range(100):  # the server commits once it notices the client left
        if server.messages:
            break
        await asyncio.sleep(0.01)
    assert server.recipients == {"an@example.vn": 1}  # so resending would have doubled it
    assert (await send(mailer, "binh@example.vn")).status is SendStatus.SENT
    assert server.connections == 2  # the desynchronised connection was not reused


@pytest.mark.parametrize("fault", [Fault.DROP_AFTER_ACCEPT, Fault.DROP_AFTER_ACCEPT_ON_NEXT])
async def test_drop_right_after_the_final_250_is_sent_and_the_next_message_goes_once(
    server: SmtpServer, make_mailer: MakeMailer, fault: Fault
) -> None:
    # DROP_AFTER_ACCEPT: the client sees the connection closed before the next
    # message. ..._ON_NEXT: the next MAIL goes out on the dead connection and fails.
    # Either way nothing of the next message was sent: reconnect, send it once.
    mailer = make_mailer(server)
    server.script(fault, recipient="an@example.vn", times=1)
    assert (await send(mailer, "an@example.vn")).status is SendStatus.SENT
    assert (await send(mailer, "binh@example.vn")).status is SendStatus.SENT
    assert server.recipients == {"an@example.vn": 1, "binh@example.vn": 1}
    assert server.connections == 2


async def test_close_after_a_drop_after_the_final_250(
    server: SmtpServer, make_mailer: MakeMailer
) -> None:
    mailer = make_mailer(server)
    server.script(Fault.DROP_AFTER_ACCEPT_ON_NEXT, recipient="an@example.vn", times=1)
    assert (await send(mailer, "an@example.vn")).status is SendStatus.SENT
    await mailer.close()  # its QUIT finds the connection dead: nothing to report
    assert server.recipients == {"an@example.vn": 1}


async def test_refused_connection_is_retry(make_mailer: MakeMailer) -> None:
    with socket.socket() as unused:
        unused.bind((HOST, 0))
        port = unused.getsockname()[1]
    mailer = SmtpMailer(settings(port), password=None)
    result = await send(mailer, "an@example.vn")
    assert result.status is SendStatus.RETRY
    assert result.detail.startswith("cannot connect at connect")


async def test_address_with_a_line_break_is_permanent_and_never_sent(
    server: SmtpServer, make_mailer: MakeMailer
) -> None:
    mailer = make_mailer(server)
    result = await send(mailer, "an@example.vn\r\nRCPT TO:<x@example.vn>", message("x@example.vn"))
    assert result.status is SendStatus.PERMANENT
    assert server.connections == 0


async def test_unexpected_error_is_retry_before_the_data_and_unknown_after(
    server: SmtpServer, make_mailer: MakeMailer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_mail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug before MAIL")

    with monkeypatch.context() as patch:
        patch.setattr(aiosmtplib.SMTP, "mail", broken_mail)
        result = await send(make_mailer(server), "an@example.vn")
    assert result == SendResult(
        SendStatus.RETRY, "unexpected RuntimeError at MAIL, message not sent: bug before MAIL"
    )

    write = SMTPProtocol.write

    def broken_end_of_data(self: SMTPProtocol, data: bytes) -> None:
        if data == b".\r\n":
            raise RuntimeError("bug at the end of the data")
        write(self, data)

    monkeypatch.setattr(SMTPProtocol, "write", broken_end_of_data)
    result = await send(make_mailer(server), "an@example.vn")
    assert result.status is SendStatus.UNKNOWN
    assert result.detail.startswith("unexpected RuntimeError after the message was sent")


# -- connections, rate, TLS ------------------------------------------------------------


async def test_slow_server_gets_at_most_concurrency_connections_reused(
    server: SmtpServer, make_mailer: MakeMailer
) -> None:
    server.delay = 0.05
    mailer = make_mailer(server, concurrency=4)
    recipients = [f"doc-gia-{n}@example.vn" for n in range(20)]
    results = await asyncio.gather(*(send(mailer, r) for r in recipients))
    assert {r.status for r in results} == {SendStatus.SENT}
    assert server.recipients == dict.fromkeys(recipients, 1)
    assert server.peak_connections <= 4
    assert server.connections <= 4 < len(recipients)


async def test_rate_per_second_spaces_sends_across_connections(
    server: SmtpServer, make_mailer: MakeMailer
) -> None:
    mailer = make_mailer(server, concurrency=4, rate=40)
    started = time.monotonic()
    results = await asyncio.gather(*(send(mailer, f"r{n}@example.vn") for n in range(20)))
    elapsed = time.monotonic() - started
    assert {r.status for r in results} == {SendStatus.SENT}
    assert 0.45 <= elapsed < 2.0  # 19 gaps of 25 ms: no initial burst


async def test_starttls_and_auth(make_mailer: MakeMailer) -> None:
    async with SmtpServer(starttls=True, auth=("bantin", "mật-khẩu")) as server:
        mailer = make_mailer(server, starttls=True, username="bantin", password="mật-khẩu")
        assert (await send(mailer, "an@example.vn")).status is SendStatus.SENT
        assert server.recipients == {"an@example.vn": 1}

        wrong = make_mailer(server, starttls=True, username="bantin", password="sai")
        result = await send(wrong, "binh@example.vn")
        assert result.status is SendStatus.RETRY  # a configuration problem, not a bounce
        assert result.detail.startswith("connecting: 535 ")

        plain = make_mailer(server)  # no STARTTLS: the server refuses to take the password
        assert (await send(plain, "binh@example.vn")).status is not SendStatus.SENT
        assert server.recipients == {"an@example.vn": 1}


async def test_implicit_tls(make_mailer: MakeMailer) -> None:
    async with SmtpServer(implicit_tls=True) as server:
        mailer = make_mailer(server, tls=True)
        assert (await send(mailer, "an@example.vn")).status is SendStatus.SENT
        assert server.recipients == {"an@example.vn": 1}


async def test_close_says_quit(server: SmtpServer, make_mailer: MakeMailer) -> None:
    mailer = make_mailer(server, concurrency=2)
    await asyncio.gather(send(mailer, "an@example.vn"), send(mailer, "binh@example.vn"))
    assert server.open_connections == 2
    await mailer.close()
    for _ in range(100):
        if not server.open_connections:
            break
        await asyncio.sleep(0.01)
    assert server.open_connections == 0


# -- the test server in a thread and in a process of its own -----------------------------


async def test_threaded_server_serves_a_client_on_another_loop(make_mailer: MakeMailer) -> None:
    with ThreadedSmtpServer() as threaded:
        threaded.script(Fault.REJECT_AT_RCPT, recipient="nobody@example.vn")
        mailer = make_mailer(threaded.server)
        assert (await send(mailer, "an@example.vn")).status is SendStatus.SENT
        assert (await send(mailer, "nobody@example.vn")).status is SendStatus.PERMANENT
        await mailer.close()
        assert threaded.recipients == {"an@example.vn": 1}


async def test_server_as_a_process_counts_messages_per_recipient(
    tmp_path: Path, make_mailer: MakeMailer
) -> None:
    command = [sys.executable, "-m", "tests.smtpserver", "--spool", str(tmp_path)]
    repository = Path(__file__).parents[2]
    process = subprocess.Popen(command, cwd=repository, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = await asyncio.to_thread(process.stdout.readline)
        port = int(url.strip().rsplit(":", 1)[1])
        mailer = SmtpMailer(settings(port), password=None)
        for recipient in ["an@example.vn", "binh@example.vn", "an@example.vn"]:
            assert (await send(mailer, recipient)).status is SendStatus.SENT
        await mailer.close()
    finally:
        process.send_signal(signal.SIGTERM)
        summary, _ = await asyncio.to_thread(process.communicate, timeout=10)
    counts = json.loads(summary)
    assert counts["recipients"] == {"an@example.vn": 2, "binh@example.vn": 1}
    assert counts["connections"] == 1
    assert len(list(tmp_path.glob("*.eml"))) == 3


# -- outbox ------------------------------------------------------------------------------


async def test_outbox_writes_one_file_per_name_atomically(tmp_path: Path) -> None:
    outbox = OutboxMailer(tmp_path / "outbox")
    first = message("an@example.vn", subject="Bản tin — lần 1")
    second = message("an@example.vn", subject="Bản tin — lần 2")
    assert (await outbox.send(SENDER, "an@example.vn", first, name="42")).status is SendStatus.SENT
    assert (await outbox.send(SENDER, "an@example.vn", second, name="42")).status is SendStatus.SENT
    assert (
        await outbox.send(SENDER, "binh@example.vn", first, name="43")
    ).status is SendStatus.SENT
    assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == ["42.eml", "43.eml"]
    subjects = [(m["Subject"], m["Delivered-To"]) for m in outbox.messages()]
    assert subjects == [
        ("Bản tin — lần 2", "an@example.vn"),
        ("Bản tin — lần 1", "binh@example.vn"),
    ]
    [latest, _] = outbox.messages()
    assert latest["Return-Path"] == f"<{SENDER}>"
    assert "Hội An" in latest.get_content()


async def test_outbox_failed_write_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox = OutboxMailer(tmp_path)
    old = message("an@example.vn", subject="cũ")
    await outbox.send(SENDER, "an@example.vn", old, name="7")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    result = await outbox.send(SENDER, "an@example.vn", message("an@example.vn"), name="7")
    assert result.status is SendStatus.RETRY
    assert "No space left" in result.detail
    assert [p.name for p in tmp_path.iterdir()] == ["7.eml"]
    [kept] = outbox.messages()
    assert kept["Subject"] == "cũ"


async def test_outbox_refuses_unsafe_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="safe file name"):
        await OutboxMailer(tmp_path).send(SENDER, "an@example.vn", b"x", name="../x")


def test_create_mailer_picks_the_backend_and_reads_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = {"title": "t", "base_url": "http://127.0.0.1:8080"}
    outbox = config.Config.model_validate({"site": site, "path": tmp_path / "config.yaml"})
    mailer = create_mailer(outbox)
    assert isinstance(mailer, OutboxMailer)
    assert mailer.directory == tmp_path / "var" / "outbox"

    smtp = {"backend": "smtp", "smtp": {"username": "u", "password_env": "TEST_SMTP_PW"}}
    with_smtp = config.Config.model_validate({"site": site, "mail": smtp})
    monkeypatch.delenv("TEST_SMTP_PW", raising=False)
    with pytest.raises(ConfigError, match=r"\$TEST_SMTP_PW is not set"):
        create_mailer(with_smtp)
    monkeypatch.setenv("TEST_SMTP_PW", "secret")
    assert isinstance(create_mailer(with_smtp), SmtpMailer)
