"""Internationalized email addresses, as each place in a message needs them.

A domain such as ``bücher.example`` has an ASCII form, its A-label
(``xn--bcher-kva.example``), which every server accepts: the envelope always
carries that one. A local part such as ``nguyễn`` has none; an address with it
can travel only to a server that offers SMTPUTF8 (RFC 6531), and its message
may then carry UTF-8 headers (RFC 6532).

The A-label is IDNA 2008 with the UTS 46 mapping (the ``idna`` package, as
email-validator uses at sign-up), not Python's ``idna`` codec, which is IDNA
2003 and maps ``fuß.example`` to a different domain, ``fuss.example``.
"""

from __future__ import annotations

import idna


def wire_form(address: str) -> str:
    """``address`` with its domain as an A-label; the local part is kept as written.

    Raises:
        ValueError: the domain is not a valid internationalized domain name.
    """
    local, at, domain = address.rpartition("@")
    if domain.isascii():
        return address
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"{address!r}: the domain is not a valid IDNA 2008 name: {exc}") from exc
    return f"{local}{at}{ascii_domain}"


def needs_smtputf8(address: str) -> bool:
    """Whether ``address`` can only be sent with SMTPUTF8: its local part is not ASCII."""
    return not address.rpartition("@")[0].isascii()


def header_form(address: str) -> str:
    """The address for the To: header: the A-label form unless only SMTPUTF8 can carry it.

    A message to an ASCII local part may pass servers without SMTPUTF8, where a
    UTF-8 header is invalid; one to a non-ASCII local part never does, so it keeps
    the address as the subscriber wrote it (RFC 6532).
    """
    return address if needs_smtputf8(address) else wire_form(address)
