"""Which network addresses a fetch may connect to (DESIGN invariant 3).

A feed URL comes from config.yaml, an OPML import or a redirect chosen by a
remote server, so without a guard a fetch could reach the host's loopback, the
cloud metadata service (169.254.169.254) or the office LAN. aiohttp reaches a
socket address by two paths, and each gets its own check:

* a host name goes through the connector's resolver: `PublicOnlyResolver`
  drops every non-public address from the answer, so the connector can only
  ever connect to what is left (no gap for DNS rebinding between check and
  connect);
* an IP literal (``http://127.0.0.1/``, ``http://[::ffff:7f00:1]/``) skips the
  resolver entirely, so `check_literal_host` runs on every hop before the
  request is made.
"""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from feedsvc.errors import BlockedAddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_HINT = "fetch.allow_private_networks is false"
# NAT64 (RFC 6052) embeds an IPv4 address; judge the embedded one, as that is
# where the translator would connect.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def address_kind(address: IPAddress) -> str | None:
    """Name why ``address`` must not be fetched from, or None when it is public.

    IPv4-mapped and NAT64 IPv6 addresses are judged by the IPv4 address they
    carry, since the kernel or the translator connects there. 6to4 and Teredo
    addresses are refused when an IPv4 address they carry is not public: a relay
    delivers there (Teredo's server and client both take part).
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return address_kind(embedded)
        for tunnelled in _tunnelled(address):
            kind = address_kind(tunnelled)
            if kind is not None:
                return kind
        if address.is_site_local:  # deprecated fec0::/10, still routed privately
            return "site-local"
    for kind, flagged in (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("non-public", not address.is_global),  # e.g. 100.64.0.0/10 carrier-grade NAT
    ):
        if flagged:
            return kind
    return None


def _tunnelled(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 addresses a 6to4 (2002::/16) or Teredo (2001::/32) address carries."""
    if address.sixtofour is not None:
        return (address.sixtofour,)
    return address.teredo or ()


def refusal(address: str, kind: str, host: str | None = None) -> BlockedAddress:
    """Build the one-line error for a refused address (``host`` when it came from DNS)."""
    via = f" for {host}" if host is not None and host != address else ""
    return BlockedAddress(f"refused {kind} address {address}{via} ({_HINT})")


@lru_cache(maxsize=4096)
def _literal_kind(host: str) -> str | None:
    """Classify a URL host once: None for a public IP literal or any host name.

    Cached because the same few thousand hosts are checked on every poll and
    parsing a non-IP host raises (and catches) a ValueError each time.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None  # a name: the resolver judges what it resolves to
    return address_kind(address)


def check_literal_host(host: str) -> None:
    """Raise `BlockedAddress` if ``host`` is a non-public IP literal."""
    kind = _literal_kind(host)
    if kind is not None:
        raise refusal(host, kind)


class PublicOnlyResolver(AbstractResolver):
    """A resolver that returns only public addresses, and refuses when none is left.

    It wraps aiohttp's default resolver, so caching, happy eyeballs and IPv6
    handling stay aiohttp's; it only filters the answer.
    """

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve ``host`` with the wrapped resolver and drop non-public answers.

        Raises:
            BlockedAddress: every address ``host`` resolved to is non-public.
        """
        answers = await self._inner.resolve(host, port, family)
        public = [a for a in answers if address_kind(ipaddress.ip_address(a["host"])) is None]
        if public or not answers:
            return public
        first = answers[0]["host"]
        raise refusal(first, address_kind(ipaddress.ip_address(first)) or "non-public", host)

    async def close(self) -> None:
        await self._inner.close()
