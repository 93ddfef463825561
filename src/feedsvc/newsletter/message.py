"""RFC 5322 messages assembled from bytes prepared once per rendered variant.

Building an ``EmailMessage`` per recipient costs about 5 ms; a digest send is
thousands of recipients over a few variants. So :func:`prepare` does all the
encoding work once (RFC 2047 headers, MIME structure, base64 of everything
before the first placeholder) and :meth:`MessageTemplate.build` only fills in
the recipient's parts, base64-encodes the short rest and joins bytes.

Header safety: every value taken from configuration or feed text (subject,
display names) has its control characters removed before it is encoded, and
every per-message value is refused if it holds any, so no text can start a
header of its own. ``List-Unsubscribe`` is written on one unfolded line, since
folding inside a URL breaks one-click unsubscribe (RFC 8058) in some clients.

DKIM: ``prepare`` takes the signer (or None, without ``mail.dkim``) and ``build``
signs every message it makes, so no path that sends mail can skip it
(:mod:`feedsvc.newsletter.signing`).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, unquote

from feedsvc.newsletter import address
from feedsvc.newsletter.render import (
    CONFIRM_URL,
    PREFERENCES_URL,
    RECIPIENT,
    UNSUBSCRIBE_URL,
    RenderedDigest,
)
from feedsvc.newsletter.signing import Signer

MAX_LINE = 998  # octets per header line, CRLF excluded (RFC 5322 2.1.1)
CRLF = b"\r\n"
_B64_LINE = 76  # characters per base64 line (RFC 2045 6.8)
_B64_CHUNK = 57  # input bytes per full base64 line
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_UNSAFE = re.compile(r"[^\x21-\x3b=\x3f-\x7e]")  # anything but visible ASCII less < and >
_ADDRESS = re.compile(r'[^\x00-\x20\x7f<>(),;:"\\@]+@[^\x00-\x20\x7f<>(),;:"\\@]+')
_SPECIALS = re.compile(r'[][\\()<>@,:;".]')  # a display name with these is quoted
_NAME_ADDR = re.compile(r"(?P<name>.*?)\s*<(?P<address>[^<>]*)>")
_MESSAGE_ID = re.compile(r"<[^\s<>@]+@[^\s<>@]+>")
_LIST_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_RECIPIENT, _UNSUBSCRIBE = RECIPIENT.encode(), UNSUBSCRIBE_URL.encode()
_PREFERENCES, _CONFIRM = PREFERENCES_URL.encode(), CONFIRM_URL.encode()


@dataclass(frozen=True, slots=True)
class _Part:
    """One MIME part: its headers and fixed start pre-encoded, its tail encoded per message.

    The fixed start ends on a multiple of 57 bytes, a whole number of base64
    lines, so its encoding never changes and the tail's lines follow on.
    """

    head: bytes
    tail: bytes
    placeholders: tuple[bytes, ...]  # those present in ``tail``
    html: bool  # values put into HTML are escaped

    def encode(self, values: dict[bytes, str]) -> tuple[bytes, bytes]:
        """The part's bytes as (fixed head, encoded tail): the caller joins them once."""
        tail = self.tail
        for key in self.placeholders:
            value = html.escape(values[key]) if self.html else values[key]
            tail = tail.replace(key, value.encode())
        return self.head, _base64_lines(tail)


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    """A rendered variant turned into bytes; :meth:`build` makes one recipient's message."""

    top: bytes  # From, then "To: "
    subject: bytes  # CRLF, Subject (maybe folded), then "Date: "
    rest: bytes  # Reply-To .. Content-Type, the last header
    parts: tuple[_Part, _Part]
    boundary: bytes
    list_message: bool  # a newsletter (List-* headers) rather than a one-off email
    signer: Signer | None  # DKIM, when configured

    def build(
        self,
        *,
        to: str,
        message_id: str,
        date: datetime,
        unsubscribe_url: str | None = None,
        unsubscribe_mailto: str | None = None,
        preferences_url: str | None = None,
        confirm_url: str | None = None,
    ) -> bytes:
        """The message for one recipient, CRLF line endings, ready for SMTP or a file,
        DKIM-signed when the template has a signer.

        Args:
            to: the recipient's address (an addr-spec), shown as written for
                ``RECIPIENT``; To: has its domain as an A-label unless the local
                part is not ASCII (:func:`address.header_form`).
            message_id: ``<…@domain>``, the same on a resend after a crash.
            date: aware; written in RFC 5322 form.
            unsubscribe_url: the https one-click URL (RFC 8058); required for a
                newsletter, also substituted for ``UNSUBSCRIBE_URL``.
            unsubscribe_mailto: ``mailto:…`` (or a bare address) offered beside it.

        Raises:
            ValueError: a value holds a control character, space or angle bracket,
                a placeholder in the body has no value, or List-Unsubscribe would
                not fit one line.
        """
        values = _values(to, unsubscribe_url, preferences_url, confirm_url)
        if date.tzinfo is None:
            raise ValueError("date must be timezone-aware")
        if not _MESSAGE_ID.fullmatch(message_id):
            raise ValueError(f"Message-ID must look like <id@domain>: {message_id!r}")
        date = date.replace(microsecond=0)
        head = [self.top, address.header_form(to).encode(), self.subject, _date(date)]
        head += [b"\r\nMessage-ID: ", message_id.encode(), CRLF]
        if self.list_message:
            head.append(_list_unsubscribe(unsubscribe_url, unsubscribe_mailto))
        head.append(self.rest)
        text, page = self.parts
        body = [b"--", self.boundary, CRLF, *text.encode(values), b"--", self.boundary, CRLF]
        body += [*page.encode(values), b"--", self.boundary, b"--\r\n"]
        header, content = b"".join(head), b"".join(body)
        if self.signer is not None:
            header = self.signer.sign(header, content, date) + header
        return header + CRLF + content


def prepare(
    rendered: RenderedDigest,
    *,
    sender: str,
    reply_to: str | None,
    list_id: str | None,
    domain: str,
    signer: Signer | None,
) -> MessageTemplate:
    """Encode everything that is the same for every recipient of ``rendered``.

    Args:
        sender: ``newsletter.from``, e.g. ``Bản tin Hà Tĩnh <bantin@example.vn>``.
        reply_to: ``newsletter.reply_to``, or None.
        list_id: the list's label, e.g. ``daily``: ``List-Id`` becomes
            ``<daily.example.vn>``; ``<daily.example.vn>`` or ``daily.example.vn``
            (already on ``domain``) are taken as they are.
            None for a one-off email such as the confirmation: no ``List-*`` headers.
        domain: our mail domain.
        signer: signs every message built from the template; None only when
            ``mail.dkim`` is not configured (required, so that no caller forgets it).

    Raises:
        ValueError: an address that does not parse, or an invalid list label.
    """
    text = _crlf(rendered.text).encode()
    page = _crlf(rendered.html).encode()
    boundary = b"=_feedsvc_" + hashlib.sha256(text + page).hexdigest()[:32].encode()
    name = _split_mailbox(sender)[0]
    rest = [f"Reply-To: {_mailbox(reply_to, 'Reply-To')}"] if reply_to else []
    rest.append("MIME-Version: 1.0")
    if list_id is not None:
        rest.append(f"List-Id: {_list_id(name, list_id, domain)}")
        rest.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    rest.append(f'Content-Type: multipart/alternative; boundary="{boundary.decode()}"')
    head = "\r\n".join(rest).encode() + CRLF
    return MessageTemplate(
        top=f"From: {_mailbox(sender, 'From')}\r\nTo: ".encode(),
        subject=f"\r\nSubject: {_encoded_text(rendered.subject, 'Subject')}\r\nDate: ".encode(),
        rest=head,
        parts=(_part(text, "text/plain", html=False), _part(page, "text/html", html=True)),
        boundary=boundary,
        list_message=list_id is not None,
        signer=signer,
    )


def _part(body: bytes, content_type: str, *, html: bool) -> _Part:
    """Pre-encode ``body`` up to the whole base64 line before its first placeholder."""
    keys = (_UNSUBSCRIBE, _PREFERENCES, _RECIPIENT, _CONFIRM)
    found = [index for index in map(body.find, keys) if index >= 0]
    first = min(found, default=len(body))
    cut = first - first % _B64_CHUNK
    headers = f"Content-Type: {content_type}; charset=utf-8\r\n"
    headers += "Content-Transfer-Encoding: base64\r\n\r\n"
    tail = body[cut:]
    return _Part(
        head=headers.encode() + _base64_lines(body[:cut]),
        tail=tail,
        placeholders=tuple(key for key in keys if key in tail),
        html=html,
    )


def _values(
    to: str, unsubscribe: str | None, preferences: str | None, confirm: str | None
) -> dict[bytes, str]:
    """The placeholder values, each checked to be one clean token (no spaces, no controls)."""
    if not _ADDRESS.fullmatch(to):
        raise ValueError(f"not an email address: {to!r}")
    values = _Values({_RECIPIENT: to})
    for key, value in ((_UNSUBSCRIBE, unsubscribe), (_PREFERENCES, preferences)):
        if value is not None:
            values[key] = _checked_url(value)
    if confirm is not None:
        values[_CONFIRM] = _checked_url(confirm)
    return values


def _checked_url(url: str) -> str:
    if _UNSAFE.search(url):
        raise ValueError(f"a URL in a message must be plain visible ASCII: {url!r}")
    return url


class _Values(dict[bytes, str]):
    """Values by placeholder; asking for one not given is a caller's bug, said plainly."""

    def __missing__(self, key: bytes) -> str:
        raise ValueError(f"the message needs a value for {key.decode()}")


def _list_unsubscribe(url: str | None, mailto: str | None) -> bytes:
    if not url:
        raise ValueError("a newsletter needs unsubscribe_url (List-Unsubscribe)")
    uris = [url]
    if mailto:
        uris.append(mailto if mailto.startswith("mailto:") else f"mailto:{mailto}")
    if any(_UNSAFE.search(uri) for uri in uris):
        raise ValueError(f"List-Unsubscribe URIs must be plain ASCII: {uris!r}")
    line = "List-Unsubscribe: " + ", ".join(f"<{uri}>" for uri in uris)
    if len(line) > MAX_LINE:
        raise ValueError(f"List-Unsubscribe is {len(line)} octets; one line holds {MAX_LINE}")
    return line.encode() + CRLF


def _list_id(name: str, label: str, domain: str) -> str:
    """``Name <label.domain>`` (RFC 2919); a label in brackets or ending in ``domain`` is kept."""
    if label.startswith("<") and label.endswith(">"):
        full = label[1:-1]
    elif label == domain or label.endswith("." + domain):
        full = label
    else:
        full = f"{label}.{domain}"
    if not _LIST_LABEL.fullmatch(full):
        raise ValueError(f"invalid List-Id label {full!r}")
    return f"{_phrase(name, 'List-Id')} <{full}>" if name else f"<{full}>"


def _mailbox(value: str, field: str) -> str:
    """``Name <addr>`` with the name RFC 2047-encoded when it is not ASCII."""
    name, address = _split_mailbox(value)
    if not _ADDRESS.fullmatch(address) or not address.isascii():
        raise ValueError(f"{field}: not an email address: {value!r}")
    return f"{_phrase(name, field)} <{address}>" if name else address


def _split_mailbox(value: str) -> tuple[str, str]:
    """(display name, address) of ``Name <addr>`` or a bare ``addr``.

    Simpler than ``email.utils.parseaddr`` on purpose: that one reads a colon in
    the name as a group and may pick an address out of the name.
    """
    value = _one_line(value)
    match = _NAME_ADDR.fullmatch(value)
    if match is None:
        return "", value
    return unquote(match["name"].strip()), match["address"]


def _phrase(name: str, field: str) -> str:
    if not name.isascii():
        return _encoded_text(name, field)
    if _SPECIALS.search(name):
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return name


def _encoded_text(value: str, field: str) -> str:
    """``value`` as one clean line, RFC 2047-encoded unless it is short plain ASCII."""
    value = _one_line(value)
    if value.isascii() and "=?" not in value and len(field) + 2 + len(value) <= 78:
        return value
    return str(Header(value, "utf-8", header_name=field).encode(linesep="\r\n"))


def _one_line(value: str) -> str:
    """NFC, control characters (CR, LF, NUL, U+2028…) gone, whitespace runs as one space."""
    value = unicodedata.normalize("NFC", _CONTROL.sub(" ", value))
    return " ".join(value.split())


@functools.lru_cache(maxsize=16)
def _date(moment: datetime) -> bytes:
    """RFC 5322 date; cached because a batch sends many messages in the same second."""
    return format_datetime(moment).encode()


def _crlf(text: str) -> str:
    """Canonical line endings (RFC 2045): text parts are CRLF before base64."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def _base64_lines(data: bytes) -> bytes:
    if not data:
        return b""
    encoded = base64.b64encode(data)
    lines = [encoded[i : i + _B64_LINE] for i in range(0, len(encoded), _B64_LINE)]
    return CRLF.join(lines) + CRLF
