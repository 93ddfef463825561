"""How a report that comes back finds the delivery it is about: the return path it was
sent to (VERP), or the Message-ID of ours that it quotes. Pure.

Each digest's envelope sender is ``bounces+{delivery}-{mac}@domain`` (VERP: a
variable envelope return path), so a bounce is addressed to the very delivery
that failed, whatever the bounce's format and even when the remote server names
no recipient. ``mac`` is an HMAC of the delivery id under the site's secret key,
cut to 80 bits of lower-case hex (mail servers may fold the case of a local
part): a report can only name a delivery whose address feedsvc made, so nobody
can bounce or unsubscribe someone else by sending a forged report to the bounce
mailbox with a guessed delivery id.

A Message-ID (``<digest.{schedule}.{period}.{subscriber}@domain>``) is guessable —
schedules and periods are public, subscriber ids count up — so a report that
matches only through it is trusted only when it also names that subscriber's
address (``newsletter.reports``).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parseaddr

from feedsvc.config import Config

_MAC_HEX = 20  # 80 bits
_SALT = b"feedsvc.verp:"


@dataclass(frozen=True, slots=True)
class ReturnPath:
    """The bounce mailbox's address split for VERP, and the key that signs tokens."""

    local: str  # "bounces"
    domain: str  # "example.vn"
    secret: bytes

    @classmethod
    def from_config(cls, config: Config, secret: bytes) -> ReturnPath:
        """``mail.bounces.address``, else ``bounces@`` the domain of ``newsletter.from``;
        ``secret`` is the site's key (``tokens.secret_key``)."""
        bounces = config.mail.bounces
        address = bounces.address if bounces and bounces.address else None
        if address is None:
            domain = parseaddr(config.newsletter.from_)[1].rpartition("@")[2] or "localhost"
            address = f"bounces@{domain}"
        local, _, domain = address.rpartition("@")
        return cls(local=local, domain=domain.lower(), secret=secret)


def verp_address(return_path: ReturnPath, delivery_id: int) -> str:
    """The envelope sender for ``delivery_id``: ``bounces+42-3f…@example.vn``."""
    token = f"{delivery_id}-{_mac(return_path.secret, delivery_id)}"
    return f"{return_path.local}+{token}@{return_path.domain}"


def verp_delivery(return_path: ReturnPath, address: str) -> int | None:
    """The delivery a VERP address was made for; None if it is not a genuine one."""
    local, _, _ = address.strip().strip("<>").rpartition("@")
    prefix = return_path.local.casefold() + "+"
    if not local.casefold().startswith(prefix):
        return None
    return token_delivery(return_path, local[len(prefix) :])


def token_delivery(return_path: ReturnPath, token: str) -> int | None:
    """The delivery a VERP token (the part after ``bounces+``) names, if it is genuine."""
    number, dash, mac = token.strip().lower().partition("-")
    if not dash or not number.isascii() or not number.isdigit() or len(number) > 18:
        return None
    delivery_id = int(number)
    if not hmac.compare_digest(mac, _mac(return_path.secret, delivery_id)):
        return None
    return delivery_id


@dataclass(frozen=True, slots=True)
class DigestKey:
    """What a digest's Message-ID says: whose digest of which period."""

    schedule: str
    period: datetime
    subscriber_id: int


def digest_key(message_id: str, domain: str) -> DigestKey | None:
    """The inverse of ``deliver.message_id``; None for any other Message-ID."""
    local, at, host = message_id.strip().strip("<>").rpartition("@")
    if not at or host.lower() != domain.lower():
        return None
    parts = local.split(".")
    if len(parts) != 4 or parts[0] != "digest" or not parts[3].isdigit():
        return None
    _, schedule, stamp, subscriber = parts
    for layout in ("%Y%m%dT%H%MZ", "%Y%m%dT%H%M%SZ"):
        try:
            period = datetime.strptime(stamp, layout).replace(tzinfo=UTC)
        except ValueError:
            continue
        return DigestKey(schedule, period, int(subscriber))
    return None


def _mac(secret: bytes, delivery_id: int) -> str:
    digest = hmac.new(secret, _SALT + str(delivery_id).encode(), hashlib.sha256).hexdigest()
    return digest[:_MAC_HEX]
