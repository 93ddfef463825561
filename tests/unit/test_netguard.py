"""Which addresses a fetch may reach: IPv6 spellings that carry an IPv4 address inside.

6to4 (2002::/16, RFC 3056) puts the IPv4 address of the far tunnel end in bits
16-47; Teredo (2001::/32, RFC 4380) carries the Teredo server and, inverted, the
client's IPv4 address. A relay delivers to the address inside, so a loopback or
private IPv4 there is as private as the plain IPv4 address.
"""

from __future__ import annotations

import ipaddress

import pytest

from feedsvc.ingest._netguard import address_kind


def teredo(server: str, client: str) -> str:
    """The Teredo address of ``client`` behind ``server`` (RFC 4380, section 4)."""
    high = 0x2001_0000 << 96 | int(ipaddress.IPv4Address(server)) << 64
    obfuscated = int(ipaddress.IPv4Address(client)) ^ 0xFFFF_FFFF
    return str(ipaddress.IPv6Address(high | 0x8000_0000 << 32 | obfuscated))


def kind(address: str) -> str | None:
    return address_kind(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
        ("2002:7f00:1::", "loopback"),
        ("2002:c0a8:101::1", "private"),  # 192.168.1.1
        ("2002:a00:1:1::5", "private"),  # 10.0.0.1
        ("2002:a9fe:a9fe::1", "link-local"),  # 169.254.169.254, the metadata service
        ("2002:6440:1::1", "non-public"),  # 100.64.0.1, carrier-grade NAT
        ("2002::1", "unspecified"),  # 0.0.0.0
        (teredo("8.8.8.8", "127.0.0.1"), "loopback"),
        (teredo("8.8.8.8", "192.168.1.20"), "private"),
        (teredo("10.0.0.1", "8.8.4.4"), "private"),  # a private Teredo server
        (teredo("127.0.0.1", "8.8.4.4"), "loopback"),
    ],
)
def test_tunnelled_private_ipv4_is_refused(address: str, expected: str) -> None:
    assert kind(address) == expected


@pytest.mark.parametrize(
    "address",
    [
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:10.0.0.1",
        "::127.0.0.1",  # IPv4-compatible (deprecated)
        "::10.0.0.1",
        "::8.8.8.8",  # IPv4-compatible is never routed, whatever it carries
        "::ffff:0:127.0.0.1",  # IPv4-translated (RFC 2765)
        "64:ff9b::7f00:1",  # NAT64
        "64:ff9b::a00:1",
        "64:ff9b:1::7f00:1",  # local-use NAT64 (RFC 8215)
    ],
)
def test_other_ipv4_in_ipv6_spellings_are_refused(address: str) -> None:
    assert kind(address) is not None


@pytest.mark.parametrize(
    "address",
    ["2002:808:808::1", "2002:5db8:d822::1", "2606:4700::1", "::ffff:8.8.8.8", "64:ff9b::808:808"],
)
def test_public_addresses_stay_public(address: str) -> None:
    """6to4 of a public IPv4, and what a dual-stack host or NAT64 carries for one."""
    assert kind(address) is None
