"""The bounce mailbox (``mail.bounces.mailbox``): a local Maildir or an IMAP folder. Reads
the messages not processed yet and marks each one once its report is recorded.

- **Maildir**: the messages in ``new/``; a processed one moves to ``cur/`` with the
  ``S`` (seen) flag, as a mail reader would move it (a message a person already
  opened, in ``cur/``, is left alone).
- **IMAP** (imaplib, in a thread): ``imaps://`` is TLS from the first byte (port
  993); ``imap://`` must upgrade with STARTTLS (port 143) — a server that offers no
  TLS is refused, so the password never crosses the network in clear. Messages
  without the ``$FeedsvcProcessed`` keyword are fetched with ``BODY.PEEK`` (a
  person's unread marks stay); a processed one gets the keyword and ``\\Seen``,
  and with ``move_to`` moves to that folder.

Marking comes after the report's row is committed, so a crash in between reads the
message again, and the row's key makes the second reading change nothing.

::

    FeedsvcError
    └── MailboxError    the mailbox cannot be reached or read (one line, no password)
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from feedsvc.config import Bounces, Config
from feedsvc.errors import ConfigError, FeedsvcError

KEYWORD = "$FeedsvcProcessed"


class MailboxError(FeedsvcError):
    """The bounce mailbox cannot be reached, logged into or read."""


@dataclass(frozen=True, slots=True)
class Letter:
    """One message of the mailbox: its bytes, and where it came from (for logs and rows)."""

    origin: str
    data: bytes
    ref: str  # the Maildir file name or the IMAP UID


class Mailbox(Protocol):
    def unread(self, limit: int) -> list[Letter]:
        """Up to ``limit`` messages not processed yet, oldest first."""
        ...

    def done(self, letter: Letter) -> None:
        """Mark ``letter`` processed so it is not read again."""
        ...

    def close(self) -> None: ...


def open_mailbox(config: Config) -> Mailbox:
    """The mailbox ``mail.bounces`` names (not connected yet).

    Raises:
        ConfigError: no ``mail.bounces``, or its ``password_env`` is not set.
    """
    bounces = config.mail.bounces
    if bounces is None:
        raise ConfigError([f"{config.path}: mail.bounces is not configured"])
    if "://" not in bounces.mailbox:
        return MaildirBox(config.root / bounces.mailbox)
    variable = bounces.password_env
    password = os.environ.get(variable) if variable else None
    if password is None:
        name = f"${variable} is not set" if variable else "password_env is missing"
        raise ConfigError([f"{config.path}: mail.bounces: {name}"])
    ca_file = config.root / bounces.ca_file if bounces.ca_file else None
    return ImapBox(bounces, password, ca_file)


class MaildirBox:
    """A Maildir (``new/``, ``cur/``, ``tmp/``) on a local disk."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def unread(self, limit: int) -> list[Letter]:
        new = self.path / "new"
        if not new.is_dir() or not (self.path / "cur").is_dir():
            raise MailboxError(f"{self.path}: not a Maildir (it needs new/ and cur/ folders)")
        names = sorted(name for name in os.listdir(new) if not name.startswith("."))
        letters = []
        for name in names[:limit]:
            try:
                data = (new / name).read_bytes()
            except FileNotFoundError:  # another process took it meanwhile
                continue
            letters.append(Letter(f"maildir:{new / name}", data, name))
        return letters

    def done(self, letter: Letter) -> None:
        base = letter.ref.split(":2,", 1)[0]
        try:
            os.rename(self.path / "new" / letter.ref, self.path / "cur" / f"{base}:2,S")
        except FileNotFoundError:
            pass  # another process moved it first

    def close(self) -> None:
        """Nothing to release."""


class ImapBox:
    """One IMAP folder, over TLS."""

    def __init__(self, settings: Bounces, password: str, ca_file: Path | None) -> None:
        parts = urlsplit(settings.mailbox)
        self.implicit_tls = parts.scheme == "imaps"
        self.host = parts.hostname or ""
        self.port = parts.port or (993 if self.implicit_tls else 143)
        self.user = unquote(parts.username or "")
        self.folder = unquote(parts.path.lstrip("/"))
        self.where = f"{parts.scheme}://{parts.username}@{parts.netloc.rpartition('@')[2]}"
        self.where += f"/{parts.path.lstrip('/')}"
        self.move_to = settings.move_to
        self._password = password
        self._timeout = settings.timeout.total_seconds()
        self._context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self._conn: imaplib.IMAP4 | None = None
        self._can_move = False

    def unread(self, limit: int) -> list[Letter]:
        with self._session("read") as conn:
            answer = conn.uid("SEARCH", "UNKEYWORD", KEYWORD)
            uids = [uid.decode() for uid in self._call("search", answer)[0].split()]
            letters: list[Letter] = []
            for uid in uids[:limit]:
                data = self._call("fetch", conn.uid("FETCH", uid, "(BODY.PEEK[])"))
                body = next((item[1] for item in data if isinstance(item, tuple)), None)
                if isinstance(body, bytes):
                    letters.append(Letter(f"{self.where};UID={uid}", body, uid))
        return letters

    def done(self, letter: Letter) -> None:
        with self._session("mark") as conn:
            flags = f"({KEYWORD} \\Seen)"
            self._call("store", conn.uid("STORE", letter.ref, "+FLAGS.SILENT", flags))
            if self.move_to:
                self._move(conn, letter.ref, _quoted(self.move_to))

    def _move(self, conn: imaplib.IMAP4, uid: str, folder: str) -> None:
        """MOVE (RFC 6851), else COPY, ``\\Deleted`` and EXPUNGE on older servers."""
        if self._can_move:
            self._call("move", conn.uid("MOVE", uid, folder))
            return
        self._call("copy", conn.uid("COPY", uid, folder))
        self._call("store", conn.uid("STORE", uid, "+FLAGS.SILENT", "(\\Deleted)"))
        self._call("expunge", conn.expunge())

    @contextlib.contextmanager
    def _session(self, what: str) -> Iterator[imaplib.IMAP4]:
        """The connection; a dropped one is forgotten (the next visit reconnects)."""
        conn = self._connected()
        try:
            yield conn
        except (imaplib.IMAP4.error, OSError) as exc:
            self._conn = None
            raise MailboxError(f"{self.where}: {what}: {_reason(exc)}") from exc

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.logout()
            except (imaplib.IMAP4.error, OSError):
                pass  # already gone: nothing to release

    def _connected(self) -> imaplib.IMAP4:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _connect(self) -> imaplib.IMAP4:
        try:
            conn = self._open()
            self._login(conn)
            self._call("select", conn.select(_quoted(self.folder)))
            self._check_keywords(conn)
            if self.move_to:
                conn.create(_quoted(self.move_to))  # "already exists" is fine
                self._can_move = "MOVE" in _capabilities(conn)
        except (imaplib.IMAP4.error, OSError) as exc:
            raise MailboxError(f"{self.where}: {_reason(exc)}") from exc
        return conn

    def _open(self) -> imaplib.IMAP4:
        if self.implicit_tls:
            return imaplib.IMAP4_SSL(
                self.host, self.port, ssl_context=self._context, timeout=self._timeout
            )
        conn = imaplib.IMAP4(self.host, self.port, timeout=self._timeout)
        if "STARTTLS" not in conn.capabilities:
            conn.shutdown()
            raise MailboxError(f"{self.where}: the server offers no STARTTLS; refusing to log in")
        conn.starttls(self._context)
        return conn

    def _login(self, conn: imaplib.IMAP4) -> None:
        """AUTHENTICATE PLAIN where offered: UTF-8 (RFC 4616), so a password may have
        diacritics; LOGIN takes ASCII only."""
        if "AUTH=PLAIN" in conn.capabilities:
            credentials = f"\0{self.user}\0{self._password}".encode()
            conn.authenticate("PLAIN", lambda _: credentials)
        else:
            conn.login(self.user, self._password)

    def _check_keywords(self, conn: imaplib.IMAP4) -> None:
        _, flags = conn.response("PERMANENTFLAGS")
        allowed = b" ".join(item for item in flags if isinstance(item, bytes))
        if b"\\*" not in allowed and not self.move_to:
            raise MailboxError(
                f"{self.where}: the server keeps no keywords; set mail.bounces.move_to"
            )

    def _call(self, what: str, answer: tuple[str, list[Any]]) -> list[Any]:
        status, data = answer
        if status != "OK":
            text = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")
            raise MailboxError(f"{self.where}: {what} failed: {text or status}")
        return data


def _capabilities(conn: imaplib.IMAP4) -> set[str]:
    status, data = conn.capability()
    words = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")
    return set(words.upper().split()) if status == "OK" else set()


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text.removeprefix("b'").removesuffix("'")[:300]
