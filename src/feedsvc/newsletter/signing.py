"""DKIM signatures (RFC 6376) for the messages :mod:`feedsvc.newsletter.message` builds.

rsa-sha256, relaxed/relaxed, over :data:`SIGNED_HEADERS` listed twice: the second
listing names an instance that does not exist, so a From, To or List-Unsubscribe
added on the way (or a Reply-To, when there is none) breaks the signature
("over-signing", RFC 6376 8.15).

Why not ``dkim.sign``: it parses the whole message again, runs two regular
expressions over every body byte and parses the key each time, which nearly
doubles the cost of a signature. Here the key is parsed once, and the body is
hashed as it is: our bodies are base64 lines, boundaries and MIME headers with
single spaces, which relaxed canonicalization leaves unchanged (a body that is
not is canonicalized by dkimpy's own code). The RSA operation is dkimpy's: pure
Python, about 10 ms with a 2048-bit key, and the floor of the cost. dkimpy's
verifier checks our signatures in the tests.

``t=`` is the message's Date, so the same inputs give the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dkim import crypto as dkim_crypto
from dkim.canonicalization import Relaxed

from feedsvc.config import Config
from feedsvc.errors import ConfigError

# What a signature covers. Reply-To is signed even when absent, so that nobody
# can add one on the way.
SIGNED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Id",
    "MIME-Version",
    "Content-Type",
)
_NAMES = tuple(name.lower().encode() for name in SIGNED_HEADERS) * 2  # over-signed
_FIELD = re.compile(rb"\r\n(?![ \t])")  # a line break that ends a header field
_WSP = re.compile(rb"[ \t]+")
_WIDTH = 78  # a header line's length, CRLF excluded (RFC 5322 2.1.1 SHOULD)


@dataclass(frozen=True, slots=True)
class Signer:
    """Signs messages as ``selector._domainkey.domain``; built once per key, used for many."""

    domain: str
    selector: str
    key: dict[str, Any] = field(repr=False)  # dkimpy's parsed RSA private key: never logged

    @classmethod
    def from_pem(cls, domain: str, selector: str, pem: bytes) -> Signer:
        """Raises ValueError: not an RSA private key in PEM (PKCS#1 or PKCS#8) form, or one
        shorter than the 1024 bits verifiers require (RFC 8301)."""
        try:
            key = dkim_crypto.parse_pem_private_key(pem)
        except Exception as exc:  # dkimpy's own errors (several lines), binascii's, ...
            raise ValueError("not an RSA private key in PEM form (PKCS#1 or PKCS#8)") from exc
        bits = int(key["modulus"]).bit_length()
        if bits < 1024:
            raise ValueError(f"a {bits}-bit key: verifiers require 1024 bits, 2048 are usual")
        return cls(domain, selector, key)

    def sign(self, header: bytes, body: bytes, date: datetime) -> bytes:
        """The ``DKIM-Signature`` field, CRLF-terminated, to put above ``header``.

        Args:
            header: the message's header fields, each ending in CRLF.
            body: everything after the blank line.
            date: the message's Date, written as ``t=``.
        """
        tags = [
            "v=1",
            "a=rsa-sha256",
            "c=relaxed/relaxed",
            f"d={self.domain}",
            f"s={self.selector}",
            f"t={int(date.timestamp())}",
        ]
        bh = base64.b64encode(hashlib.sha256(_canonical_body(body)).digest()).decode()
        names = [f"{name.decode()}:" for name in _NAMES]
        names[0], names[-1] = "h=" + names[0], names[-1].rstrip(":") + ";"
        atoms = [(" ", f"{tag};") for tag in tags] + [(" ", names[0])]
        atoms += [("", name) for name in names[1:]] + [(" ", f"bh={bh};"), (" ", "b=")]
        unsigned = _fold(atoms)
        digest = hashlib.sha256()
        for name, value in _selected(header):
            digest.update(name + b":" + _canonical_value(value) + b"\r\n")
        digest.update(b"dkim-signature:" + _canonical_value(unsigned.encode()))
        encoded = base64.b64encode(dkim_crypto.RSASSA_PKCS1_v1_5_sign(digest, self.key)).decode()
        lines = [encoded[i : i + _WIDTH - 2] for i in range(0, len(encoded), _WIDTH - 2)]
        folded = "\r\n\t".join(lines)
        return f"DKIM-Signature:{unsigned}\r\n\t{folded}\r\n".encode()


def load_signer(config: Config) -> Signer | None:
    """The signer ``mail.dkim`` describes (None without it), its key file read once.

    Raises:
        ConfigError: the key file cannot be read or holds no RSA private key.
    """
    settings = config.mail.dkim
    if settings is None:
        return None
    path = config.root / settings.private_key_file
    where = f"{config.path}: mail.dkim.private_key_file"
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{where}: cannot read {path}: {exc.strerror}"]) from exc
    try:
        return Signer.from_pem(settings.domain, settings.selector, pem)
    except ValueError as exc:
        raise ConfigError([f"{where}: {path}: {exc}"]) from exc


def _selected(header: bytes) -> Iterable[tuple[bytes, bytes]]:
    """(lowercase name, raw value) of each signed field, as RFC 6376 5.4.2 picks them:
    for each name in ``h=``, the last instance not yet used; none when all are."""
    fields: dict[bytes, list[bytes]] = {}
    for line in _FIELD.split(header.removesuffix(b"\r\n")):
        name, _, value = line.partition(b":")
        fields.setdefault(name.rstrip().lower(), []).append(value)
    for name in _NAMES:
        instances = fields.get(name)
        if instances:
            yield name, instances.pop()


def _canonical_value(value: bytes) -> bytes:
    """Relaxed header canonicalization of one value (RFC 6376 3.4.2)."""
    return _WSP.sub(b" ", value.replace(b"\r\n", b"")).strip(b" ")


def _canonical_body(body: bytes) -> bytes:
    """Relaxed body canonicalization (RFC 6376 3.4.4), skipped when it changes nothing.

    Our bodies never hold a tab, two spaces in a row, a space before a line
    break, or empty lines at the end; checking that is a few ``bytes.find`` calls.
    """
    plain = b"\t" not in body and b"  " not in body and b" \r\n" not in body
    if plain and body.endswith(b"\r\n") and not body.endswith(b"\r\n\r\n"):
        return body
    return bytes(Relaxed.canonicalize_body(body))


def _fold(atoms: list[tuple[str, str]]) -> str:
    """Join (separator, text) pieces, breaking the line before a piece that would pass
    the width: the places a DKIM-Signature may be folded (between tags, after an h= colon)."""
    out: list[str] = []
    column = len("DKIM-Signature:")
    for gap, text in atoms:
        if column + len(gap) + len(text) > _WIDTH:
            out.append("\r\n\t")
            column, gap = 1, ""
        out.append(gap + text)
        column += len(gap) + len(text)
    return "".join(out)
