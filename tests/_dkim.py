"""DKIM for tests: a fresh RSA key, and dkimpy's verifier with DNS answered by the test.

The key is made by the ``openssl`` command (no Python crypto library is needed).
``verify`` is dkimpy's own verification of the bytes as they arrived, with its
TXT lookup replaced by the key's record: no DNS server, no network.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import dkim

SELECTOR = "feedsvc"


@dataclass(frozen=True, slots=True)
class DkimKey:
    private_key_file: Path  # PEM
    public: bytes  # DER, base64: the p= of the DNS record

    def record(self) -> bytes:
        return b"v=DKIM1; k=rsa; p=" + self.public


def make_key(folder: Path, bits: int = 2048) -> DkimKey:
    openssl = shutil.which("openssl")
    assert openssl, "the openssl command is needed to make a DKIM test key"
    private = folder / "dkim.pem"
    subprocess.run(
        [openssl, "genrsa", "-out", str(private), str(bits)], check=True, capture_output=True
    )
    public = subprocess.run(
        [openssl, "rsa", "-in", str(private), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return DkimKey(private, base64.b64encode(public))


def verify(message: bytes, key: DkimKey, domain: str) -> bool:
    """dkimpy's verdict on ``message``; the only name it may look up is the key's record."""
    looked_up: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        looked_up.append(name)
        return key.record() if name == f"{SELECTOR}._domainkey.{domain}.".encode() else None

    verdict = bool(dkim.verify(message, dnsfunc=dns))
    assert looked_up, "the message carries no DKIM-Signature to verify"
    return verdict


def signed_headers(message: bytes) -> list[str]:
    """The h= tag of the message's DKIM-Signature: the header names it covers, in order."""
    head = message.split(b"\r\n\r\n", 1)[0].replace(b"\r\n ", b" ").replace(b"\r\n\t", b" ")
    [field] = [line for line in head.split(b"\r\n") if line.lower().startswith(b"dkim-signature:")]
    match = re.search(rb"(?:^|;)\s*h=([^;]*)", field.split(b":", 1)[1])
    assert match, field
    return [name.strip().decode().lower() for name in match.group(1).split(b":")]
