"""A real SMTP server on 127.0.0.1 for tests: aiosmtpd, a mailbox, and scripted misbehaviour.

Mail, delivery, benchmark and end-to-end tests all talk to this one server. It
keeps every message it accepted (envelope sender, recipients, raw bytes), counts
the TCP connections it was opened, and misbehaves on request, per recipient
address or for everyone (``server.script(Fault.X, recipient=..., times=N)``):

=====================  ==================================================================
``ACCEPT``             the default: ``250`` and the message is stored
``CLOSING_AT_MAIL``    ``421`` in reply to MAIL, then the server closes (global only: a
                       recipient is not known yet at MAIL)
``CLOSING_AT_RCPT``    ``421`` in reply to RCPT, then close
``CLOSING_AT_DATA``    ``421`` in reply to the DATA command (no ``354``), then close
``TRY_LATER_AT_RCPT``  ``451 4.2.0`` in reply to RCPT
``TRY_LATER_AT_DATA``  reads the whole message, then ``451 4.3.0`` instead of ``250``
``REJECT_AT_RCPT``     ``550 5.1.1`` in reply to RCPT
``DROP_MID_DATA``      ``354``, reads the first piece of the body, then aborts the
                       connection (RST). The client notices while it is still sending
                       only if the body outgrows the socket buffers (a few MB on
                       loopback); a smaller body is already fully sent by then
``DROP_BEFORE_REPLY``  reads the whole message, stores nothing, aborts without a reply
``DROP_AFTER_ACCEPT``  stores the message, sends the final ``250`` and closes the
                       connection at once: the client got its ``250`` (see below)
``DROP_AFTER_ACCEPT_``  stores the message, sends the final ``250``, then aborts the
``ON_NEXT``            connection without a reply when the client's next command (MAIL,
                       RSET, NOOP or QUIT) arrives: the client's next command fails
=====================  ==================================================================

``server.delay`` (seconds) makes the server slow: it sleeps that long after each
message's data before storing it and replying, so a client whose timeout is
shorter gives up although the message was accepted. ``starttls=True`` or
``implicit_tls=True`` serve a self-signed certificate generated at test time for
``127.0.0.1`` (``server.client_ssl_context()`` trusts it) and ``auth=(user,
password)`` requires AUTH PLAIN or LOGIN before MAIL. ``smtputf8=False`` makes a server
that does not offer SMTPUTF8 (RFC 6531), as many do not: aiosmtpd then leaves it out of
its EHLO reply, answers ``501`` to ``MAIL FROM:<…> SMTPUTF8`` and ``500`` to a command
holding a non-ASCII address.

Drop after the final 250: the server writes ``250 2.0.0 OK`` and closes its side
(FIN) before reading further. The client reads the 250 — the message is stored,
and delivered. What it sees next depends on when it looks: if its event loop has
already processed the FIN (on one loop it always has), the connection reports
itself closed before the next message; otherwise its next command (MAIL, or QUIT)
is written and reading the reply fails with "connection lost".
``DROP_AFTER_ACCEPT_ON_NEXT`` forces that second case. Either way nothing of the
next message was sent.

Use it as ``async with SmtpServer() as server:`` on the test's event loop, as
``with ThreadedSmtpServer() as server:`` when the client is a subprocess (it runs
on a loop of its own in a background thread), or as ``python -m tests.smtpserver
--port N`` from the repository root: it prints ``smtp://127.0.0.1:PORT``, serves
until SIGTERM/SIGINT, then prints one JSON line with the counts per recipient.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import importlib.util
import json
import logging
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests._background import InThread

HOST = "127.0.0.1"

# aiosmtpd logs this warning on every successful AUTH, from its own code; with no
# logging configured (a subprocess, a thread) it lands on stderr. Drop just it.
logging.getLogger("mail.log").addFilter(
    lambda record: "login_data is deprecated" not in record.getMessage()
)


class Fault(StrEnum):
    ACCEPT = "accept"
    CLOSING_AT_MAIL = "421-at-mail"
    CLOSING_AT_RCPT = "421-at-rcpt"
    CLOSING_AT_DATA = "421-at-data"
    TRY_LATER_AT_RCPT = "451-at-rcpt"
    TRY_LATER_AT_DATA = "451-at-data"
    REJECT_AT_RCPT = "550-at-rcpt"
    DROP_MID_DATA = "drop-mid-data"
    DROP_BEFORE_REPLY = "drop-before-reply"
    DROP_AFTER_ACCEPT = "drop-after-accept"
    DROP_AFTER_ACCEPT_ON_NEXT = "drop-after-accept-on-next"


_AT_MAIL = {Fault.CLOSING_AT_MAIL}
_AT_RCPT = {Fault.CLOSING_AT_RCPT, Fault.TRY_LATER_AT_RCPT, Fault.REJECT_AT_RCPT}
_AT_DATA = set(Fault) - _AT_MAIL - _AT_RCPT - {Fault.ACCEPT}
_CLOSING = "421 4.3.2 Service closing transmission channel"


@dataclass(frozen=True, slots=True)
class Received:
    """One accepted message: its envelope and its bytes as received (CRLF, un-dot-stuffed)."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes  # empty when the server was told not to keep messages
    connection: int  # which TCP connection (1, 2, ...) carried it
    mail_options: tuple[str, ...] = ()  # the MAIL command's parameters: SIZE=…, SMTPUTF8


@dataclass(slots=True)
class _Script:
    fault: Fault
    remaining: int | None  # None: forever


class SmtpServer:
    """The server, run on the current event loop (see the module docstring).

    It is also the aiosmtpd handler: ``handle_MAIL``, ``handle_RCPT`` and
    ``handle_DATA`` are the hooks aiosmtpd calls.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        starttls: bool = False,
        implicit_tls: bool = False,
        auth: tuple[str, str] | None = None,
        delay: float = 0.0,
        keep: bool = True,
        spool: Path | None = None,
        cert_dir: Path | None = None,
        smtputf8: bool = True,
    ) -> None:
        if starttls and implicit_tls:
            raise ValueError("starttls and implicit_tls are exclusive")
        self.delay = delay
        self.messages: list[Received] = []
        self.recipients: Counter[str] = Counter()  # accepted messages per recipient
        self.connections = 0  # TCP connections accepted
        self.peak_connections = 0  # most connections open at once
        self._port = port
        self._starttls, self._implicit_tls, self._auth = starttls, implicit_tls, auth
        self._keep, self._spool, self._cert_dir = keep, spool, cert_dir
        self.smtputf8 = smtputf8
        self._scripts: dict[str | None, _Script] = {}
        self._open: set[_Session] = set()
        self._server: asyncio.Server | None = None
        self._cert: Path | None = None

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Listen on 127.0.0.1 (on a free port unless one was given)."""
        tls: ssl.SSLContext | None = None
        if self._starttls or self._implicit_tls:
            self._cert, key = certificate(self._cert_dir)
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(self._cert, key)
        if self._spool is not None:
            self._spool.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()

        def accept() -> _Session:
            self.connections += 1
            session = _Session(self, self.connections, tls if self._starttls else None)
            self._open.add(session)
            self.peak_connections = max(self.peak_connections, len(self._open))
            return session

        implicit = tls if self._implicit_tls else None
        self._server = await loop.create_server(accept, HOST, self._port, ssl=implicit)
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening, close every open connection and wait until they are gone."""
        if self._server is None:
            return
        self._server.close()
        for session in list(self._open):
            if session.transport is not None:
                session.transport.close()
        for _ in range(100):  # up to a second for their handler tasks to finish
            if not self._open:
                break
            await asyncio.sleep(0.01)
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- what tests use ----------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"smtp://{HOST}:{self._port}"

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's self-signed certificate."""
        if self._cert is None:
            raise RuntimeError("the server has no TLS (pass starttls=True or implicit_tls=True)")
        return ssl.create_default_context(cafile=str(self._cert))

    def script(
        self, fault: Fault, *, recipient: str | None = None, times: int | None = None
    ) -> None:
        """Misbehave for ``recipient`` (or everyone without a script of their own).

        ``times`` limits how often the fault fires before the address is accepted
        again; ``Fault.ACCEPT`` for an address exempts it from a global script.
        """
        if recipient is not None and fault in _AT_MAIL:
            raise ValueError(f"{fault} happens before any recipient is known: script it globally")
        self._scripts[recipient.lower() if recipient else None] = _Script(fault, times)

    def clear(self) -> None:
        """Forget every script, message and connection count."""
        self._scripts.clear()
        self.messages.clear()
        self.recipients.clear()
        self.connections = self.peak_connections = 0

    def received(self, recipient: str) -> list[Received]:
        """The messages accepted for ``recipient``, oldest first."""
        address = recipient.lower()
        return [m for m in self.messages if address in (r.lower() for r in m.recipients)]

    # -- aiosmtpd hooks ----------------------------------------------------------

    async def handle_MAIL(  # noqa: N802 (aiosmtpd's hook names)
        self, server: _Session, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self._auth is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        if self._take(None, _AT_MAIL) is not None:
            server.hangup = True
            return _CLOSING
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(  # noqa: N802
        self, server: _Session, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        fault = self._take(address, _AT_RCPT)
        if fault is Fault.CLOSING_AT_RCPT:
            server.hangup = True
            return _CLOSING
        if fault is Fault.TRY_LATER_AT_RCPT:
            return "451 4.2.0 Mailbox temporarily unavailable, try again later"
        if fault is Fault.REJECT_AT_RCPT:
            return "550 5.1.1 User unknown"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802
        self, server: _Session, session: Session, envelope: Envelope
    ) -> str:
        if server.fault is Fault.TRY_LATER_AT_DATA:
            return "451 4.3.0 Temporary failure, try again later"
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            # The data is in: like a real server, commit it even if the client
            # gave up waiting for the reply (aiosmtpd cancels us when it leaves).
            self._store(envelope, server.number)
        if server.fault is Fault.DROP_AFTER_ACCEPT:
            server.hangup = True
        elif server.fault is Fault.DROP_AFTER_ACCEPT_ON_NEXT:
            server.drop_next = True
        return "250 2.0.0 OK: queued"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        """aiosmtpd's authenticator: PLAIN and LOGIN both hand over a `LoginPassword`."""
        ok = (
            self._auth is not None
            and isinstance(data, LoginPassword)
            and (data.login.decode(), data.password.decode()) == self._auth
        )
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535

    # -- inside ------------------------------------------------------------------

    def _take(self, address: str | None, stage: set[Fault]) -> Fault | None:
        """The fault scripted for ``address`` at this stage, counting it as used."""
        key = address.lower() if address and address.lower() in self._scripts else None
        script = self._scripts.get(key)
        if script is None or script.fault not in stage:
            return None
        if script.remaining is not None:
            script.remaining -= 1
            if script.remaining <= 0:
                del self._scripts[key]
        return script.fault

    def _store(self, envelope: Envelope, connection: int) -> None:
        data = envelope.original_content or b""
        recipients = tuple(envelope.rcpt_tos)
        sender = envelope.mail_from or ""
        options = tuple(envelope.mail_options)
        kept = data if self._keep else b""
        self.messages.append(Received(sender, recipients, kept, connection, options))
        self.recipients.update(r.lower() for r in recipients)
        if self._spool is not None:
            number = len(self.messages)
            (self._spool / f"{number:07d}.eml").write_bytes(data)
            line = {"file": f"{number:07d}.eml", "sender": sender, "recipients": recipients}
            with (self._spool / "received.jsonl").open("a", encoding="utf-8") as log:
                log.write(json.dumps(line) + "\n")

    def _closed(self, session: _Session) -> None:
        self._open.discard(session)


class _Session(SMTP):
    """One connection: aiosmtpd's SMTP plus the faults that need the connection itself."""

    def __init__(self, owner: SmtpServer, number: int, starttls: ssl.SSLContext | None) -> None:
        super().__init__(
            owner,
            hostname="localhost",  # not socket.getfqdn(): no DNS lookup per connection
            enable_SMTPUTF8=owner.smtputf8,
            tls_context=starttls,
            authenticator=owner.authenticate if owner._auth else None,
            auth_require_tls=starttls is not None,
        )
        self.owner = owner
        self.number = number
        self.fault: Fault | None = None  # decided at DATA, read by handle_DATA
        self.hangup = False  # close the connection right after the next reply
        self.drop_next = False  # abort the connection when the next command comes

    async def push(self, status: Any) -> None:
        await super().push(status)
        if self.hangup and self.transport is not None:
            self.transport.close()  # flushes the reply first, then FIN

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        self.owner._closed(self)

    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802
        recipients = self.envelope.rcpt_tos if self.envelope is not None else []
        self.fault = self.owner._take(recipients[0], _AT_DATA) if recipients else None
        if self.fault is Fault.CLOSING_AT_DATA:
            self.hangup = True
            await self.push(_CLOSING)
        elif self.fault is Fault.DROP_MID_DATA:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            await self._reader.read(65536)  # the first piece of the body, never all of it
            self._abort()
        elif self.fault is Fault.DROP_BEFORE_REPLY:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            while await self._reader.readuntil(b"\r\n") != b".\r\n":
                pass
            self._abort()
        else:
            await super().smtp_DATA(arg)

    # The commands a client may send after a message: each may find the connection dropped.

    async def smtp_MAIL(self, arg: str | None) -> None:  # noqa: N802
        if not self._dropped():
            await super().smtp_MAIL(arg)

    async def smtp_RSET(self, arg: str) -> None:  # noqa: N802
        if not self._dropped():
            await super().smtp_RSET(arg)

    async def smtp_NOOP(self, arg: str) -> None:  # noqa: N802
        if not self._dropped():
            await super().smtp_NOOP(arg)

    async def smtp_QUIT(self, arg: str) -> None:  # noqa: N802
        if not self._dropped():
            await super().smtp_QUIT(arg)

    def _dropped(self) -> bool:
        if self.drop_next:
            self._abort()
        return self.drop_next

    def _abort(self) -> None:
        if isinstance(self.transport, asyncio.Transport):
            self.transport.abort()  # no FIN handshake; unread body in the kernel makes an RST


# -- a certificate for 127.0.0.1 ----------------------------------------------------

_certificates: dict[Path | None, tuple[Path, Path]] = {}
_cert_lock = threading.Lock()


def certificate(directory: Path | None = None) -> tuple[Path, Path]:
    """A self-signed certificate and key for 127.0.0.1/localhost: ``(cert.pem, key.pem)``.

    Made once per directory (by default once per process, in a temporary
    directory removed at exit), with ``cryptography`` when it is installed and
    the ``openssl`` command otherwise.
    """
    with _cert_lock:
        if directory not in _certificates:
            where = directory or Path(tempfile.mkdtemp(prefix="smtpserver-"))
            if directory is None:
                atexit.register(shutil.rmtree, where, True)
            where.mkdir(parents=True, exist_ok=True)
            cert, key = where / "cert.pem", where / "key.pem"
            if importlib.util.find_spec("cryptography") is not None:
                _cryptography_certificate(cert, key)
            else:
                _openssl_certificate(cert, key)
            _certificates[directory] = cert, key
        return _certificates[directory]


def _openssl_certificate(cert: Path, key: Path) -> None:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
        + ["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-keyout", str(key)]
        + ["-out", str(cert), "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True,
        capture_output=True,
    )


def _cryptography_certificate(cert: Path, key: Path) -> None:
    import datetime
    import ipaddress

    from cryptography import x509  # type: ignore[import-not-found, unused-ignore]
    from cryptography.hazmat.primitives import (  # type: ignore[import-not-found, unused-ignore]
        hashes,
        serialization,
    )
    from cryptography.hazmat.primitives.asymmetric import (  # type: ignore[import-not-found, unused-ignore]
        ec,
    )
    from cryptography.x509.oid import NameOID  # type: ignore[import-not-found, unused-ignore]

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]
    built = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(built.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


# -- in a thread, or a process of its own ----------------------------------------------


class ThreadedSmtpServer(InThread):
    """An `SmtpServer` on its own event loop in a background thread.

    For a subprocess client (``feedsvc digest send``) or synchronous code. The
    counters and ``messages`` are read from the test's thread; ``script`` may be
    called between sends.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(SmtpServer(**options), "smtpserver")


def main() -> None:
    """``python -m tests.smtpserver [--port N] ...``: serve until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="sleep per message")
    parser.add_argument("--starttls", action="store_true")
    parser.add_argument("--tls", action="store_true", help="implicit TLS")
    parser.add_argument("--cert-dir", type=Path, help="write cert.pem/key.pem here")
    parser.add_argument("--auth", metavar="USER:PASSWORD")
    parser.add_argument("--spool", type=Path, help="write each message and received.jsonl here")
    parser.add_argument("--no-smtputf8", action="store_true", help="do not offer SMTPUTF8")
    args = parser.parse_args()
    user, _, password = (args.auth or "").partition(":")
    auth = (user, password) if args.auth else None

    async def serve() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        server = SmtpServer(
            port=args.port,
            starttls=args.starttls,
            implicit_tls=args.tls,
            auth=auth,
            delay=args.delay_ms / 1000,
            keep=False,  # nobody can read them from memory; --spool writes them out
            spool=args.spool,
            cert_dir=args.cert_dir,
            smtputf8=not args.no_smtputf8,
        )
        async with server:
            sys.stdout.write(server.url + "\n")
            sys.stdout.flush()
            await stopping.wait()
        summary = {
            "messages": len(server.messages),
            "connections": server.connections,
            "recipients": dict(server.recipients),
        }
        sys.stdout.write(json.dumps(summary) + "\n")

    asyncio.run(serve())


if __name__ == "__main__":
    main()
