"""Handing finished messages to a mail backend, and saying exactly what became of each.

Two backends implement :class:`Mailer`: :class:`OutboxMailer` writes one ``.eml``
file per message (the embedded default, and the tests' mailbox) and
:class:`SmtpMailer` talks to an SMTP server over a few persistent connections.

``send`` never raises for a delivery problem: it returns a :class:`SendResult`
whose status is what the caller needs to deliver each message exactly once.

=============  =============================================================
status         when
=============  =============================================================
SENT           the server answered 2xx to the end of the message's data
RETRY          the message was certainly not accepted, so sending it again
               is safe: a 4xx reply at any stage (421, 451, ...), a
               connection that could not be made or logged into, a drop or
               a timeout before the end-of-data mark was handed to the socket
PERMANENT      a 5xx reply to MAIL, RCPT or DATA (a bounce), or an address
               that cannot be sent to at all
UNDELIVERABLE  not sent, and not the recipient's fault: an address with a
               non-ASCII local part, to a server that does not offer SMTPUTF8
UNKNOWN        the end-of-data mark was handed to the socket, then no reply
               came (a drop, a timeout, a garbled reply): the server may have
               the message, so the caller records it and never resends
=============  =============================================================

The line between RETRY and UNKNOWN is the end-of-data mark (``CRLF.CRLF``): a
server can accept nothing before it, so every failure before it is RETRY, and
any failure after it — an unexpected exception included — is UNKNOWN. To place
that line exactly, :class:`SmtpMailer` drives DATA itself: it writes the body,
waits until the body has left the process and checks the connection is still
up, and only then writes the mark. A drop noticed while the body is still being
written is therefore RETRY; one that comes later is UNKNOWN, even if the server
in fact dropped mid-body, because the client cannot tell the two apart.

A 5xx while connecting or logging in is RETRY, not PERMANENT: it says the
configuration or the server is wrong, not that this recipient bounced.

Addresses (:mod:`feedsvc.newsletter.address`): an internationalized domain goes
on the envelope as its A-label, so it needs nothing of the server. SMTPUTF8 is
asked for only when a local part is not ASCII, and only of a server whose EHLO
offers it; otherwise that message is UNDELIVERABLE before MAIL is said.
"""

from __future__ import annotations

import asyncio
import email.policy
import logging
import os
import re
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from aiosmtplib import (
    SMTP,
    SMTPHeloError,
    SMTPResponseException,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)
from aiosmtplib.protocol import SMTPProtocol

from feedsvc import metrics
from feedsvc.config import Config, Mail
from feedsvc.errors import ConfigError
from feedsvc.newsletter import address

log = logging.getLogger("feedsvc.mail")


class SendStatus(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # not accepted; sending again is safe
    PERMANENT = "permanent"  # refused for good: a bounce
    UNKNOWN = "unknown"  # the server may have accepted it: never resend
    UNDELIVERABLE = "undeliverable"  # cannot go this way (no SMTPUTF8); not a bounce


@dataclass(frozen=True, slots=True)
class SendResult:
    status: SendStatus
    detail: str  # one line: "550 5.1.1 User unknown", "timed out at RCPT, message not sent: ..."


class Mailer(Protocol):
    """A mail backend. ``name`` is a stable, file-safe id of the message (the delivery's id)."""

    async def send(self, sender: str, recipient: str, message: bytes, *, name: str) -> SendResult:
        """Hand one message over; see the module docstring for what each status means."""
        ...

    async def close(self) -> None:
        """Release connections; call it once no send is in flight."""
        ...


def create_mailer(config: Config) -> Mailer:
    """The backend ``mail.backend`` names, with the SMTP password from the environment.

    Raises:
        ConfigError: ``mail.smtp.password_env`` names a variable that is not set.
    """
    if config.mail.backend == "outbox":
        return OutboxMailer(config.outbox_path)
    variable = config.mail.smtp.password_env
    password = os.environ.get(variable) if variable else None
    if variable and password is None:
        raise ConfigError([f"{config.path}: mail.smtp.password_env: ${variable} is not set"])
    return SmtpMailer(config.mail, password=password)


# -- outbox -----------------------------------------------------------------------------

_FILE_SAFE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class OutboxMailer:
    """One RFC 5322 ``NAME.eml`` file per message in a folder, like a local mail drop.

    Each file is the message as given, preceded by the ``Return-Path`` and
    ``Delivered-To`` lines a delivery agent adds, so the envelope is not lost (in
    the form SMTP would send it: domains as A-labels; the outbox, like a local
    drop, takes a non-ASCII local part as it is). It
    is written atomically (temporary file, fsync, rename, fsync of the folder):
    a crash leaves either the whole file or none, and sending the same ``name``
    again replaces it rather than adding a second copy. A ``name`` that is not a
    plain file name (``../x``) is a programming error: ``ValueError``.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    async def send(self, sender: str, recipient: str, message: bytes, *, name: str) -> SendResult:
        if not _FILE_SAFE.fullmatch(name):
            raise ValueError(f"message name {name!r} is not a safe file name")
        problem = _address_problem(sender, recipient)
        if problem:
            return SendResult(SendStatus.PERMANENT, problem)
        newline = b"\r\n" if message.split(b"\n", 1)[0].endswith(b"\r") else b"\n"
        head = f"Return-Path: <{address.wire_form(sender)}>".encode() + newline
        head += f"Delivered-To: {address.wire_form(recipient)}".encode() + newline
        try:
            await asyncio.to_thread(self._write, f"{name}.eml", head + message)
        except OSError as exc:  # nothing was replaced: trying again is safe
            return SendResult(SendStatus.RETRY, f"cannot write the outbox: {exc}")
        return SendResult(SendStatus.SENT, f"written to {self.directory / name}.eml")

    async def close(self) -> None:
        """Nothing to release."""

    def messages(self) -> list[EmailMessage]:
        """Every message in the folder, oldest first (for tests and ``digest preview``)."""
        files = sorted(self.directory.glob("*.eml"), key=lambda p: (p.stat().st_mtime_ns, p.name))
        parser = BytesParser(_class=EmailMessage, policy=email.policy.default)
        return [parser.parsebytes(path.read_bytes()) for path in files]

    def _write(self, filename: str, data: bytes) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # addresses, tokens
        temporary = self.directory / f".{filename}.{uuid.uuid4().hex}.tmp"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.directory / filename)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        folder = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(folder)  # makes the rename itself survive a power cut
        finally:
            os.close(folder)


# -- SMTP -------------------------------------------------------------------------------

_END_OF_DATA = b".\r\n"


@dataclass(frozen=True, slots=True)
class _Envelope:
    """A message ready for the wire: CRLF lines, dot-stuffed, without the end-of-data mark."""

    sender: str
    recipient: str
    payload: bytes
    size: int  # octets before dot-stuffing, for the SIZE extension (RFC 1870)
    eight_bit: bool
    utf8_addresses: bool

    @classmethod
    def build(cls, sender: str, recipient: str, message: bytes) -> _Envelope:
        """Line endings and dot-stuffing as RFC 5321 wants them.

        ``bytes.replace`` rather than aiosmtplib's regular expressions (which
        ``sendmail`` also runs twice): the same bytes at a fifth of the CPU, and
        that was most of a message's sending cost.
        """
        lines = message
        crlf = lines.count(b"\r\n")
        if lines.count(b"\n") != crlf or lines.count(b"\r") != crlf:  # a bare CR or LF
            lines = lines.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
        if not lines.endswith(b"\r\n"):
            lines += b"\r\n"
        stuffed = (b"." if lines[:1] == b"." else b"") + lines.replace(b"\n.", b"\n..")
        utf8 = address.needs_smtputf8(sender) or address.needs_smtputf8(recipient)
        return cls(
            address.wire_form(sender),
            address.wire_form(recipient),
            stuffed,
            len(lines),
            not lines.isascii(),
            utf8,
        )

    def mail_options(self, smtp: SMTP) -> list[str]:
        options = [f"SIZE={self.size}"] if smtp.supports_extension("size") else []
        if self.eight_bit and smtp.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")
        if self.utf8_addresses:
            options.append("SMTPUTF8")
        return options


@dataclass(slots=True)
class _Attempt:
    """How far one try at a transaction got: where a failure happened decides its status."""

    stage: str = "connect"  # connect, MAIL, RCPT, DATA, message, reply
    committed: bool = False  # the end-of-data mark was handed to the socket
    replied: bool = False  # the failure was a well-formed 4xx/5xx reply
    closing: bool = False  # the reply was 421: the server is closing the connection
    stale: bool = False  # a reused connection was found dead at MAIL


class _RateLimiter:
    """``rate`` sends per second across every connection: a token bucket holding one token.

    With a capacity of one there is no burst: the first sends are spaced like all
    the others. Each caller reserves the next slot, so waiting is fair.
    """

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next = 0.0

    async def wait(self) -> None:
        now = asyncio.get_running_loop().time()
        start = max(now, self._next)
        self._next = start + self._interval
        if start > now:
            await asyncio.sleep(start - now)


class SmtpMailer:
    """SMTP through ``mail.concurrency`` persistent connections (aiosmtplib).

    Connections open lazily, are reused message after message (the most recently
    used first, so a light load keeps a single connection), and are replaced
    after a 421, a drop or a timeout. STARTTLS (``smtp.starttls``) or implicit TLS
    (``smtp.tls``), AUTH when ``smtp.username`` is set, ``smtp.timeout`` per
    command, and ``mail.rate_per_second`` across all connections.

    Use one instance per event loop: its connections belong to the loop that
    opened them.

    Args:
        settings: the ``mail:`` section.
        password: for AUTH; ``create_mailer`` reads it from ``smtp.password_env``.
        ssl_context: replaces the default (system CAs, hostname checked), e.g.
            to trust a test server's self-signed certificate.
    """

    def __init__(
        self, settings: Mail, *, password: str | None, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self._settings = settings.smtp
        self._password = password
        self._ssl_context = ssl_context
        self._timeout = settings.smtp.timeout.total_seconds()
        self._limiter = _RateLimiter(settings.rate_per_second)
        self._idle: asyncio.LifoQueue[_Connection] = asyncio.LifoQueue()
        for _ in range(settings.concurrency):
            self._idle.put_nowait(_Connection(self._new_session, self._timeout))

    async def send(self, sender: str, recipient: str, message: bytes, *, name: str) -> SendResult:
        problem = _address_problem(sender, recipient)
        if problem:
            return SendResult(SendStatus.PERMANENT, problem)
        envelope = _Envelope.build(sender, recipient, message)
        connection = await self._idle.get()
        try:
            await self._limiter.wait()
            with metrics.SMTP_SECONDS.time():  # the server's time, not our queue or rate limit
                return await connection.deliver(envelope)
        finally:
            self._idle.put_nowait(connection)

    async def close(self) -> None:
        """Say QUIT on every open connection (errors ignored: they are going anyway)."""
        connections = [self._idle.get_nowait() for _ in range(self._idle.qsize())]
        try:
            await asyncio.gather(*(connection.quit() for connection in connections))
        finally:
            for connection in connections:
                self._idle.put_nowait(connection)

    def _new_session(self) -> SMTP:
        smtp = self._settings
        return SMTP(
            hostname=smtp.host,
            port=smtp.port,
            username=smtp.username,
            password=(self._password or "") if smtp.username else None,
            timeout=self._timeout,
            use_tls=smtp.tls,
            start_tls=smtp.starttls and not smtp.tls,
            tls_context=self._ssl_context,
        )


class _Connection:
    """One SMTP session, opened on first use and reused for message after message."""

    def __init__(self, new_session: Callable[[], SMTP], timeout: float) -> None:
        self._new_session = new_session
        self._timeout = timeout
        self._smtp: SMTP | None = None

    async def deliver(self, envelope: _Envelope) -> SendResult:
        """Send one message; a reused connection found dead at MAIL is replaced once.

        That case is a server that closed an idle connection, or dropped it right
        after the previous message's final 250: nothing of this message was sent.
        """
        reused = self._smtp is not None and self._smtp.is_connected
        attempt = _Attempt()
        result = await self._try(envelope, attempt)
        if reused and attempt.stale:
            result = await self._try(envelope, _Attempt())
        return result

    async def quit(self) -> None:
        if self._smtp is not None and self._smtp.is_connected:
            try:
                await self._smtp.quit()
            except Exception:  # noqa: S110 - closing anyway; nothing to report
                pass
        self._discard()

    async def _try(self, envelope: _Envelope, attempt: _Attempt) -> SendResult:
        try:
            smtp = await self._connected()
            result = await self._transact(smtp, envelope, attempt)
        except Exception as exc:  # every failure is a result: see the module docstring
            result = _failure(exc, attempt)
        except BaseException:  # cancelled mid-transaction: the session state is unknown
            self._discard()
            raise
        await self._settle(result, attempt)
        return result

    async def _connected(self) -> SMTP:
        if self._smtp is not None and self._smtp.is_connected:
            return self._smtp
        self._discard()
        smtp = self._new_session()
        await smtp.connect()  # TLS and AUTH as configured; closes itself on failure
        try:
            if smtp.is_ehlo_or_helo_needed:  # not said yet: no STARTTLS, no AUTH
                await _greet(smtp)
        except BaseException:
            smtp.close()
            raise
        log.debug("smtp connected", extra={"fields": {"host": smtp.hostname, "port": smtp.port}})
        self._smtp = smtp
        return smtp

    async def _transact(self, smtp: SMTP, envelope: _Envelope, attempt: _Attempt) -> SendResult:
        """MAIL, RCPT, DATA, then the body and the end-of-data mark written by hand."""
        if envelope.utf8_addresses and not smtp.supports_extension("smtputf8"):
            return _no_smtputf8(smtp, envelope)
        attempt.stage = "MAIL"
        encoding = "utf-8" if envelope.utf8_addresses else "ascii"
        await smtp.mail(envelope.sender, options=envelope.mail_options(smtp), encoding=encoding)
        attempt.stage = "RCPT"
        await smtp.rcpt(envelope.recipient, encoding=encoding)
        attempt.stage = "DATA"
        reply = await smtp.execute_command(b"DATA")
        if reply.code != 354:
            return _reply_result(reply.code, reply.message, attempt)
        attempt.stage = "message"
        protocol = await self._send_body(smtp, envelope.payload)
        attempt.stage, attempt.committed = "reply", True
        protocol.write(_END_OF_DATA)
        reply = await protocol.read_response(timeout=self._timeout)
        return _reply_result(reply.code, reply.message, attempt)

    async def _send_body(self, smtp: SMTP, payload: bytes) -> SMTPProtocol:
        """Write the body; return once it has left the process and the connection is up.

        Yields to the event loop at least once, so a close or reset that already
        arrived is seen before the end-of-data mark could be written. Over TLS
        the buffer checked is the TLS layer's: bytes still queued below it count
        as sent, which can only turn a RETRY into an UNKNOWN, never the reverse.
        """
        protocol, transport = smtp.protocol, smtp.transport
        if protocol is None or not isinstance(transport, asyncio.WriteTransport):
            raise SMTPServerDisconnected("connection lost before the message was sent")
        protocol.write(payload)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        pause = 0.0
        while True:
            await asyncio.sleep(pause)
            if transport.is_closing():
                raise SMTPServerDisconnected("connection lost while the message was being sent")
            if not transport.get_write_buffer_size():
                return protocol
            if loop.time() >= deadline:
                raise SMTPTimeoutError(f"message not sent within {self._timeout:g}s")
            pause = min(max(pause * 2, 0.001), 0.05)

    async def _settle(self, result: SendResult, attempt: _Attempt) -> None:
        """Keep the connection for the next message if its state is known, else drop it."""
        if result.status in (SendStatus.SENT, SendStatus.UNDELIVERABLE) or self._smtp is None:
            return  # a transaction that ended well, or one never begun
        usable = attempt.replied and not attempt.closing and self._smtp.is_connected
        if usable and attempt.stage in ("MAIL", "RCPT", "DATA"):
            try:  # a refused transaction is still open on the server: reset it
                await self._smtp.rset()
                return
            except Exception:  # noqa: S110 - the connection goes below
                pass
        elif usable and attempt.stage == "reply":
            return  # a refusal of the data ends the transaction by itself
        self._discard()

    def _discard(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None


async def _greet(smtp: SMTP) -> None:
    try:
        await smtp.ehlo()
    except SMTPHeloError:
        await smtp.helo()  # a server from before ESMTP


def _no_smtputf8(smtp: SMTP, envelope: _Envelope) -> SendResult:
    """Nothing to try: the server cannot take a non-ASCII local part (RFC 6531)."""
    who = envelope.recipient if address.needs_smtputf8(envelope.recipient) else envelope.sender
    return SendResult(
        SendStatus.UNDELIVERABLE,
        f"not sent: {who} has a non-ASCII local part, which needs SMTPUTF8, "
        f"and {smtp.hostname}:{smtp.port} does not offer it",
    )


def _reply_result(code: int, message: str, attempt: _Attempt) -> SendResult:
    """The status a server's reply means at this stage of the transaction."""
    text = f"{code} {' '.join(message.split())}".strip()
    attempt.replied = 400 <= code < 600
    attempt.closing = code == 421
    if 200 <= code < 300 and attempt.committed:
        return SendResult(SendStatus.SENT, text)
    if 400 <= code < 500 or (code >= 500 and attempt.stage == "connect"):
        where = "connecting: " if attempt.stage == "connect" else ""
        return SendResult(SendStatus.RETRY, where + text)
    if 500 <= code < 600:
        return SendResult(SendStatus.PERMANENT, text)
    status = SendStatus.UNKNOWN if attempt.committed else SendStatus.RETRY
    return SendResult(status, f"unexpected reply at {attempt.stage}: {text}")


def _failure(exc: Exception, attempt: _Attempt) -> SendResult:
    """The status of an exception: a reply, else a drop or timeout placed by the attempt."""
    if isinstance(exc, SMTPResponseException) and 400 <= exc.code < 600:
        return _reply_result(exc.code, exc.message, attempt)
    if isinstance(exc, TimeoutError):
        what = "timed out"
    elif isinstance(exc, OSError):
        what = "connection lost" if attempt.stage != "connect" else "cannot connect"
    else:
        what = f"unexpected {type(exc).__name__}"
    reason = " ".join(str(exc).split())
    if attempt.committed:
        return SendResult(
            SendStatus.UNKNOWN,
            f"{what} after the message was sent, before the server's reply: {reason}",
        )
    attempt.stale = attempt.stage == "MAIL" and isinstance(exc, ConnectionError)
    return SendResult(SendStatus.RETRY, f"{what} at {attempt.stage}, message not sent: {reason}")


def _address_problem(*addresses: str) -> str | None:
    """Why an address can never be sent to (control characters inject commands, a
    domain that is not a valid internationalized name has no A-label)."""
    for mailbox in addresses:
        if not mailbox or _CONTROL.search(mailbox):
            return f"invalid address {mailbox!r}"
        try:
            address.wire_form(mailbox)
        except ValueError as exc:
            return f"invalid address {exc}"
    return None
