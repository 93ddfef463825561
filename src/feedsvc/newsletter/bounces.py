"""Reading a delivery report that came back after sending: what it says, about whom, and
which of our messages it is about. Pure: bytes in, a :class:`BounceReport` out.

Three shapes arrive at a bounce mailbox:

- **DSNs** (RFC 3464: ``multipart/report; report-type=delivery-status``), from
  Postfix, Gmail, Outlook, Exim…: a ``message/delivery-status`` part with one block
  per recipient (``Action``, ``Status``, ``Diagnostic-Code``), read with the
  ``email`` package. ``Action: failed`` with a 5.x.x status is permanent; a 4.x.x
  status or ``Action: delayed`` is transient (the address may be fine);
  ``delivered``/``relayed``/``expanded`` are not failures.
- **ARF complaints** (RFC 5965: ``report-type=feedback-report``), from the
  feedback loops of Outlook, Yahoo, AOL…: ``Feedback-Type: abuse`` or ``fraud`` is
  a complaint; other types (``not-spam``, ``auth-failure``…) are not.
- **Older, non-standard bounces** (qmail, old Exchange, some hosted systems): left
  to flufl.bounce's heuristic detectors, the ones GNU Mailman uses.

Whatever the bytes, :func:`parse_report` returns a value and never raises: a
message it cannot read is ``ReportKind.OTHER`` with a ``detail`` saying why.
"""

from __future__ import annotations

import email.policy
import hashlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.utils import getaddresses

from flufl.bounce import all_failures

from feedsvc.model import ReportKind

# flufl.bounce logs every detector it tries at INFO: seventeen lines per report.
logging.getLogger("flufl.bounce").setLevel(logging.WARNING)

MAX_REPORT_BYTES = 5_000_000
"""A report larger than this is not parsed (bounces quote at most the original's headers)."""

_COMPLAINTS = frozenset({"abuse", "fraud"})
_FAILED_ACTIONS = frozenset({"failed", "delayed"})
# Where the address a report was sent to appears once the mail server delivered it.
_DELIVERED_TO = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")
_ORIGINAL_PARTS = ("message/rfc822", "text/rfc822-headers")


@dataclass(frozen=True, slots=True)
class BounceReport:
    """What one report says.

    ``recipients`` are the addresses it is about (lower-cased); ``verp_token`` the
    part after ``LOCAL+`` in the return path it was sent to, when it was sent to
    one; ``original_message_id`` the Message-ID of our message it quotes.
    """

    kind: ReportKind
    recipients: tuple[str, ...]
    sha256: str
    message_id: str | None = None
    original_message_id: str | None = None
    verp_token: str | None = None
    detail: str | None = None

    @property
    def key(self) -> str:
        """What makes two copies of a report the same: its Message-ID, else its bytes."""
        if self.message_id:
            return "m:" + hashlib.sha256(self.message_id.encode()).hexdigest()
        return "b:" + self.sha256


def parse_report(data: bytes, *, local_part: str = "bounces") -> BounceReport:
    """Read one report; ``local_part`` is the return path's (``bounces`` in
    ``bounces+TOKEN@example.vn``)."""
    digest = hashlib.sha256(data).hexdigest()
    if len(data) > MAX_REPORT_BYTES:
        return BounceReport(ReportKind.OTHER, (), digest, detail="too large to be a report")
    message = BytesParser(policy=email.policy.compat32).parsebytes(data)
    original = _original_headers(message)
    kind, recipients, detail = _classify(message)
    return BounceReport(
        kind=kind,
        recipients=recipients,
        sha256=digest,
        message_id=_message_id(message.get("Message-ID")),
        original_message_id=_message_id(original.get("Message-ID")) if original else None,
        verp_token=_verp_token(_return_addresses(message, original), local_part),
        detail=detail,
    )


def _classify(message: Message) -> tuple[ReportKind, tuple[str, ...], str | None]:
    feedback = _part(message, "message/feedback-report")
    if feedback is not None:
        return _complaint(message, _fields(feedback))
    status = _part(message, "message/delivery-status")
    if status is not None:
        return _delivery_status(status)
    if message.get("Auto-Submitted", "no").strip().lower() == "auto-replied":
        return ReportKind.OTHER, (), "an auto-reply, not a report"
    return _heuristic(message)


def _complaint(message: Message, fields: Message) -> tuple[ReportKind, tuple[str, ...], str | None]:
    feedback_type = (fields.get("Feedback-Type") or "").strip().lower()
    recipients = _addresses(fields.get_all("Original-Rcpt-To") or [])
    if not recipients:
        original = _original_headers(message)
        recipients = _addresses(original.get_all("To") or []) if original else ()
    detail = f"feedback-type {feedback_type or 'missing'}"
    if feedback_type in _COMPLAINTS:
        return ReportKind.COMPLAINT, recipients, detail
    return ReportKind.OTHER, recipients, detail


def _delivery_status(part: Message) -> tuple[ReportKind, tuple[str, ...], str | None]:
    """The per-recipient blocks of a ``message/delivery-status`` part (RFC 3464 2.3)."""
    permanent: list[tuple[str, str]] = []
    transient: list[tuple[str, str]] = []
    for block in _blocks(part):
        action = (block.get("Action") or "").strip().lower()
        if action not in _FAILED_ACTIONS:
            continue
        recipient = _typed_address(block.get("Final-Recipient") or block.get("Original-Recipient"))
        status = (block.get("Status") or "").strip().split(" ")[0]
        diagnostic = _one_line(block.get("Diagnostic-Code") or "")
        detail = " ".join(part for part in (status, diagnostic) if part) or action
        failed_for_good = action == "failed" and not status.startswith("4")
        (permanent if failed_for_good else transient).append((recipient, detail))
    if permanent:
        return ReportKind.PERMANENT, _unique(r for r, _ in permanent), permanent[0][1]
    if transient:
        return ReportKind.TRANSIENT, _unique(r for r, _ in transient), transient[0][1]
    return ReportKind.OTHER, (), "a delivery status notification without a failure"


def _heuristic(message: Message) -> tuple[ReportKind, tuple[str, ...], str | None]:
    """flufl.bounce's detectors, for bounces without a delivery-status part."""
    try:
        temporary, permanent = all_failures(message)
    except Exception as exc:  # a heuristic choking on hostile input must not stop the rest
        return ReportKind.OTHER, (), f"unreadable: {type(exc).__name__}"
    if permanent:
        return ReportKind.PERMANENT, _decoded(permanent), "a non-standard bounce (flufl.bounce)"
    if temporary:
        return ReportKind.TRANSIENT, _decoded(temporary), "a non-standard warning (flufl.bounce)"
    return ReportKind.OTHER, (), "not a delivery report"


def _part(message: Message, content_type: str) -> Message | None:
    return next((p for p in message.walk() if p.get_content_type() == content_type), None)


def _blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    return [HeaderParser().parsestr(chunk) for chunk in str(payload).split("\n\n")]


def _fields(part: Message) -> Message:
    """The fields of a ``message/feedback-report`` part (parsed as a sub-message or text)."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    return HeaderParser().parsestr(str(payload))


def _original_headers(message: Message) -> Message | None:
    """The headers of our message that the report quotes, if it quotes them."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind not in _ORIGINAL_PARTS or part is message:
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0]
        raw = part.get_payload(decode=True)
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(payload)
        return HeaderParser().parsestr(text.lstrip("\r\n"))
    return None


def _return_addresses(message: Message, original: Message | None) -> Iterator[str]:
    """Where a report may show our return path: the address it was delivered to, the
    ``Original-Mail-From`` of a complaint, the quoted message's ``Return-Path``."""
    for name in _DELIVERED_TO:
        yield from (address for _, address in getaddresses(message.get_all(name) or []))
    feedback = _part(message, "message/feedback-report")
    if feedback is not None:
        yield from _addresses(_fields(feedback).get_all("Original-Mail-From") or [])
    if original is not None:
        yield from _addresses(original.get_all("Return-Path") or [])


def _verp_token(addresses: Iterable[str], local_part: str) -> str | None:
    prefix = local_part.casefold() + "+"
    for address in addresses:
        local, at, _ = address.strip().rpartition("@")
        if at and local.casefold().startswith(prefix) and len(local) > len(prefix):
            return local[len(prefix) :]
    return None


def _message_id(value: object) -> str | None:
    text = " ".join(str(value).split()) if value is not None else ""
    if not text:
        return None
    return text if text.startswith("<") else f"<{text.strip('<>')}>"


def _typed_address(value: str | None) -> str:
    """``rfc822; user@example.com`` (RFC 3464's address-type; address) → the address."""
    text = _one_line(value or "")
    _, semicolon, address = text.partition(";")
    return (address if semicolon else text).strip().strip("<>").lower()


def _addresses(values: Iterable[str]) -> tuple[str, ...]:
    return _unique(address.lower() for _, address in getaddresses(list(values)) if address)


def _decoded(addresses: Iterable[bytes | str]) -> tuple[str, ...]:
    return _unique(
        (a.decode("ascii", "replace") if isinstance(a, bytes) else a).lower() for a in addresses
    )


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(value for value in values if value))


def _one_line(value: str) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= 300 else text[:299] + "…"
