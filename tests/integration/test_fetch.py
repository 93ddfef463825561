"""The fetch stage against a real HTTP server on 127.0.0.1 (tests/feedserver.py).

Each test is one promise of DESIGN invariant 3 ("be a good citizen of the web")
or invariant 4 ("hostile input harms nothing"). Only the address tests turn
``allow_private_networks`` off: everywhere else the test server's own loopback
address must be allowed.
"""

from __future__ import annotations

import asyncio
import socket
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from feedsvc.errors import (
    BlockedAddress,
    ConnectError,
    FetchError,
    FetchTimeout,
    Gone,
    HTTPStatusError,
    TooLarge,
    TooManyRedirects,
)
from feedsvc.ingest import _netguard
from feedsvc.ingest.fetch import Fetcher, FetchPolicy
from tests.feedserver import FeedServer, ThreadedFeedServer

NOW = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
UA = "feedsvc-test/1.0 (+https://example.vn/bot)"
CAP = 1 << 20  # 1 MiB
FEED = "/feeds/news.xml"


def make_policy(**overrides: Any) -> FetchPolicy:
    settings: dict[str, Any] = {
        "user_agent": UA,
        "timeout": 5.0,
        "max_bytes": CAP,
        "allow_private_networks": True,
    }
    return FetchPolicy(**(settings | overrides))


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with Fetcher(make_policy()) as fetcher:
        yield fetcher


@pytest.fixture
async def guarded() -> AsyncIterator[Fetcher]:
    """A fetcher with the production default: private networks refused."""
    async with Fetcher(make_policy(allow_private_networks=False)) as fetcher:
        yield fetcher


# --- plain and conditional GET --------------------------------------------------------


async def test_200_returns_body_and_validators(fetcher: Fetcher, feed_server: FeedServer) -> None:
    result = await fetcher.fetch(feed_server.url(FEED), now=NOW)

    assert result.status == 200
    assert result.url == feed_server.url(FEED)
    assert result.body is not None
    assert "Hội An".encode() in result.body
    assert result.etag is not None
    assert result.etag.startswith('"')
    assert result.last_modified is not None
    assert result.last_modified.endswith("GMT")
    assert result.permanent_url is None
    assert not result.not_modified


async def test_304_sends_conditional_headers_and_keeps_validators(
    fetcher: Fetcher, feed_server: FeedServer
) -> None:
    first = await fetcher.fetch(feed_server.url(FEED), now=NOW)

    again = await fetcher.fetch(
        feed_server.url(FEED), etag=first.etag, last_modified=first.last_modified, now=NOW
    )

    assert again.status == 304
    assert again.not_modified
    assert again.body is None
    assert (again.etag, again.last_modified) == (first.etag, first.last_modified)
    sent = feed_server.headers_for(FEED)[-1]
    assert sent["If-None-Match"] == first.etag
    assert sent["If-Modified-Since"] == first.last_modified


async def test_if_modified_since_alone_gives_304(fetcher: Fetcher, feed_server: FeedServer) -> None:
    first = await fetcher.fetch(feed_server.url(FEED), now=NOW)

    again = await fetcher.fetch(feed_server.url(FEED), last_modified=first.last_modified, now=NOW)

    assert again.status == 304
    assert "If-None-Match" not in feed_server.headers_for(FEED)[-1]


async def test_edited_feed_returns_200_with_new_validators(
    fetcher: Fetcher, feed_server: FeedServer
) -> None:
    first = await fetcher.fetch(feed_server.url(FEED), now=NOW)
    feed_server.write("news.xml", "<rss version='2.0'><channel><title>mới</title></channel></rss>")

    again = await fetcher.fetch(
        feed_server.url(FEED), etag=first.etag, last_modified=first.last_modified, now=NOW
    )

    assert again.status == 200
    assert again.body is not None
    assert "mới".encode() in again.body
    assert again.etag != first.etag
    assert again.last_modified != first.last_modified


async def test_no_conditional_headers_without_validators(
    fetcher: Fetcher, feed_server: FeedServer
) -> None:
    await fetcher.fetch(feed_server.url(FEED), now=NOW)

    sent = feed_server.headers_for(FEED)[-1]
    assert "If-None-Match" not in sent
    assert "If-Modified-Since" not in sent


async def test_user_agent_and_accept_encoding_sent(
    fetcher: Fetcher, feed_server: FeedServer
) -> None:
    await fetcher.fetch(feed_server.url(FEED), now=NOW)

    sent = feed_server.headers_for(FEED)[-1]
    assert sent["User-Agent"] == UA
    assert sent["Accept-Encoding"] == "gzip, deflate, br"
    assert "application/rss+xml" in sent["Accept"]


@pytest.mark.parametrize("content_type", ["text/html", "application/octet-stream"])
async def test_wrong_content_type_still_returns_body(
    fetcher: Fetcher, feed_server: FeedServer, content_type: str
) -> None:
    result = await fetcher.fetch(feed_server.url(f"{FEED}?type={content_type}"), now=NOW)

    assert result.status == 200
    assert result.headers["Content-Type"] == content_type
    assert result.body == (feed_server.root / "news.xml").read_bytes()


# --- redirects ---------------------------------------------------------------------------


async def test_301_then_301_sets_permanent_url_to_final(
    fetcher: Fetcher, feed_server: FeedServer
) -> None:
    result = await fetcher.fetch(feed_server.url("/redirect/301/redirect/301" + FEED), now=NOW)

    assert result.status == 200
    assert result.url == feed_server.url(FEED)
    assert result.permanent_url == feed_server.url(FEED)
    assert feed_server.requests["/redirect/301/redirect/301" + FEED] == 1
    assert feed_server.requests["/redirect/301" + FEED] == 1


async def test_308_with_absolute_location_sets_permanent_url(
    fetcher: Fetcher, feed_server: FeedServer
) -> None:
    result = await fetcher.fetch(feed_server.url("/redirect-abs/308" + FEED), now=NOW)

    assert result.permanent_url == feed_server.url(FEED)


@pytest.mark.parametrize(
    "path",
    [
        "/redirect/302" + FEED,
        "/redirect/301/redirect/302" + FEED,
        "/redirect/307/redirect/308" + FEED,
    ],
)
async def test_temporary_hop_anywhere_leaves_permanent_url_unset(
    fetcher: Fetcher, feed_server: FeedServer, path: str
) -> None:
    result = await fetcher.fetch(feed_server.url(path), now=NOW)

    assert result.status == 200
    assert result.url == feed_server.url(FEED)
    assert result.permanent_url is None


async def test_relative_location_resolved_against_the_hop(
    fetcher: Fetcher, feed_server: FeedServer
) -> None:
    # Location "feeds/news.xml" (no leading slash), relative to /redirect-to.
    result = await fetcher.fetch(
        feed_server.url("/redirect-to?code=301&url=feeds/news.xml"), now=NOW
    )

    assert result.url == feed_server.url(FEED)


async def test_302_loop_raises_too_many_redirects(
    fetcher: Fetcher, feed_server: FeedServer
) -> None:
    with pytest.raises(
        TooManyRedirects, match=r"^redirect loop at http://127\.0\.0\.1:\d+/loop/a$"
    ):
        await fetcher.fetch(feed_server.url("/loop/a"), now=NOW)

    assert feed_server.requests["/loop/a"] == 1
    assert feed_server.requests["/loop/b"] == 1


async def test_more_hops_than_allowed_raises_too_many_redirects(feed_server: FeedServer) -> None:
    path = "/redirect/301" * 3 + FEED
    async with Fetcher(make_policy(max_redirects=2)) as fetcher:
        with pytest.raises(TooManyRedirects, match=r"^more than 2 redirects from 127\.0\.0\.1$"):
            await fetcher.fetch(feed_server.url(path), now=NOW)
        assert (await fetcher.fetch(feed_server.url("/redirect/301" * 2 + FEED), now=NOW)).body

    assert feed_server.requests[FEED] == 1  # only the two-hop chain got there


async def test_redirect_to_file_scheme_refused(fetcher: Fetcher, feed_server: FeedServer) -> None:
    with pytest.raises(BlockedAddress, match=r"^unsupported scheme 'file'$"):
        await fetcher.fetch(feed_server.url("/redirect-to?url=file:///etc/passwd"), now=NOW)


# --- error statuses ----------------------------------------------------------------------


async def test_410_raises_gone(fetcher: Fetcher, feed_server: FeedServer) -> None:
    with pytest.raises(Gone, match=r"^HTTP 410 Gone from 127\.0\.0\.1$") as caught:
        await fetcher.fetch(feed_server.url("/status/410"), now=NOW)

    assert caught.value.status == 410
    assert caught.value.retry_after is None


async def test_429_retry_after_seconds(fetcher: Fetcher, feed_server: FeedServer) -> None:
    with pytest.raises(HTTPStatusError, match=r"^HTTP 429 Too Many Requests from ") as caught:
        await fetcher.fetch(feed_server.url("/status/429?retry_after=120"), now=NOW)

    assert caught.value.status == 429
    assert caught.value.retry_after == NOW + timedelta(seconds=120)


async def test_429_retry_after_http_date(fetcher: Fetcher, feed_server: FeedServer) -> None:
    date = "Sat, 28 Nov 2026 03:30:00 GMT"

    with pytest.raises(HTTPStatusError) as caught:
        await fetcher.fetch(feed_server.url(f"/status/429?retry_after={date}"), now=NOW)

    assert caught.value.retry_after == datetime(2026, 11, 28, 3, 30, tzinfo=UTC)
    assert caught.value.retry_after.tzinfo is not None


async def test_503_carries_retry_after(fetcher: Fetcher, feed_server: FeedServer) -> None:
    with pytest.raises(HTTPStatusError, match=r"^HTTP 503 Service Unavailable from ") as caught:
        await fetcher.fetch(feed_server.url("/status/503?retry_after=3600"), now=NOW)

    assert caught.value.status == 503
    assert caught.value.retry_after == NOW + timedelta(hours=1)


async def test_unparseable_retry_after_is_ignored(
    fetcher: Fetcher, feed_server: FeedServer
) -> None:
    with pytest.raises(HTTPStatusError) as caught:
        await fetcher.fetch(feed_server.url("/status/503?retry_after=soon"), now=NOW)

    assert caught.value.retry_after is None


async def test_500_names_status_and_host(fetcher: Fetcher, feed_server: FeedServer) -> None:
    with pytest.raises(HTTPStatusError) as caught:
        await fetcher.fetch(feed_server.url("/status/500"), now=NOW)

    assert str(caught.value) == "HTTP 500 Internal Server Error from 127.0.0.1"
    assert not isinstance(caught.value, Gone)


async def test_404_is_http_status_error(fetcher: Fetcher, feed_server: FeedServer) -> None:
    with pytest.raises(HTTPStatusError, match=r"^HTTP 404 Not Found from 127\.0\.0\.1$"):
        await fetcher.fetch(feed_server.url("/feeds/missing.xml"), now=NOW)


# --- content encodings and size caps ---------------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "deflate-raw", "br"])
async def test_compressed_body_decoded(
    fetcher: Fetcher, feed_server: FeedServer, encoding: str
) -> None:
    result = await fetcher.fetch(feed_server.url(f"/encoded/{encoding}/news.xml"), now=NOW)

    assert result.headers["Content-Encoding"] == encoding.removesuffix("-raw")
    assert result.body == (feed_server.root / "news.xml").read_bytes()


@pytest.mark.parametrize(
    ("encoding", "size"),
    [("gzip", 10_000_000), ("deflate", 10_000_000), ("br", 10_000_000), ("gzip", 2**30)],
    ids=["gzip-10MB", "deflate-10MB", "br-10MB", "gzip-1GiB"],
)
async def test_gzip_bomb_stops_at_cap(
    fetcher: Fetcher, feed_server: FeedServer, encoding: str, size: int
) -> None:
    url = feed_server.url(f"/bomb/{encoding}?size={size}")
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge, match=r"^body larger than 1 MB \(after decompression\)"):
            await fetcher.fetch(url, now=NOW)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 3 * CAP, f"peak {peak:,} bytes while decoding a {size:,}-byte bomb"


async def test_corrupt_gzip_is_a_fetch_error(fetcher: Fetcher, feed_server: FeedServer) -> None:
    with pytest.raises(FetchError, match=r"^corrupt gzip body from 127\.0\.0\.1$"):
        await fetcher.fetch(feed_server.url(f"{FEED}?claim=gzip"), now=NOW)


async def test_unknown_content_encoding_is_a_fetch_error(
    fetcher: Fetcher, feed_server: FeedServer
) -> None:
    with pytest.raises(FetchError, match=r"^unsupported Content-Encoding 'zstd' from "):
        await fetcher.fetch(feed_server.url(f"{FEED}?claim=zstd"), now=NOW)


async def test_endless_body_raises_too_large(fetcher: Fetcher, feed_server: FeedServer) -> None:
    with pytest.raises(TooLarge, match=r"^body larger than 1 MB from 127\.0\.0\.1$"):
        await fetcher.fetch(feed_server.url("/endless"), now=NOW)


async def test_content_length_over_cap_refused_before_reading(
    fetcher: Fetcher, feed_server: FeedServer
) -> None:
    started = time.monotonic()

    with pytest.raises(TooLarge, match=r"\(Content-Length 1000000000\)"):
        await fetcher.fetch(feed_server.url("/lying-length?length=1000000000"), now=NOW)

    assert time.monotonic() - started < 1.0  # the body stalls: waiting for it would time out


# --- deadline and transport failures ---------------------------------------------------


async def test_one_byte_a_second_body_times_out_at_deadline(feed_server: FeedServer) -> None:
    async with Fetcher(make_policy(timeout=1.5)) as fetcher:
        started = time.monotonic()
        with pytest.raises(FetchTimeout, match=r"^timed out after 1\.5 s fetching 127\.0\.0\.1$"):
            await fetcher.fetch(feed_server.url("/slow?bytes=60&interval=1"), now=NOW)
        elapsed = time.monotonic() - started

    assert 1.4 < elapsed < 2.5


async def test_deadline_covers_every_redirect_hop(feed_server: FeedServer) -> None:
    slow = "/redirect-to?url=/slow%3Fbytes%3D60%26interval%3D0.2"
    async with Fetcher(make_policy(timeout=1.0)) as fetcher:
        started = time.monotonic()
        with pytest.raises(FetchTimeout):
            await fetcher.fetch(feed_server.url(slow), now=NOW)

    assert time.monotonic() - started < 2.0


async def test_refused_connection_is_connect_error(fetcher: Fetcher) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(ConnectError, match=r"^cannot connect to 127\.0\.0\.1 \(.+\)$"):
        await fetcher.fetch(f"http://127.0.0.1:{port}/feed.xml", now=NOW)


async def test_truncated_body_is_connect_error(fetcher: Fetcher, feed_server: FeedServer) -> None:
    with pytest.raises(ConnectError, match=r"^incomplete response body from 127\.0\.0\.1"):
        await fetcher.fetch(feed_server.url("/truncated"), now=NOW)


@pytest.mark.parametrize(
    "path",
    ["/status/500", "/loop/a", "/endless", "/truncated", f"{FEED}?claim=gzip", "/bomb/br"],
)
async def test_every_error_message_is_one_line(
    fetcher: Fetcher, feed_server: FeedServer, path: str
) -> None:
    with pytest.raises(FetchError) as caught:
        await fetcher.fetch(feed_server.url(path), now=NOW)

    assert str(caught.value)
    assert "\n" not in str(caught.value)


# --- connections ---------------------------------------------------------------------------


async def test_connection_reused_across_fetches(fetcher: Fetcher, feed_server: FeedServer) -> None:
    first = await fetcher.fetch(feed_server.url(FEED), now=NOW)
    for _ in range(9):
        await fetcher.fetch(feed_server.url(FEED), etag=first.etag, now=NOW)

    assert feed_server.requests[FEED] == 10
    assert feed_server.connections == 1


async def test_fetch_from_server_on_another_thread(fetcher: Fetcher, feed_root: Path) -> None:
    # The service-as-a-subprocess tests use this server from a background thread.
    with ThreadedFeedServer(feed_root) as server:
        result = await fetcher.fetch(server.url(FEED), now=NOW)

    assert result.body == (feed_root / "news.xml").read_bytes()
    assert server.requests[FEED] == 1


async def test_at_most_per_host_connections_to_one_host(feed_server: FeedServer) -> None:
    async with Fetcher(make_policy(per_host=2), concurrency=10) as fetcher:
        slow = feed_server.url("/slow?bytes=2&interval=0.05")
        await asyncio.gather(*(fetcher.fetch(slow, now=NOW) for _ in range(6)))

    assert feed_server.requests["/slow"] == 6
    assert feed_server.connections == 2


# --- private networks and schemes ----------------------------------------------------


@pytest.mark.parametrize(
    ("host", "shown"),
    [("127.0.0.1", "127.0.0.1"), ("[::ffff:127.0.0.1]", "::ffff:7f00:1"), ("[::1]", "::1")],
)
async def test_loopback_literal_refused_without_connecting(
    guarded: Fetcher, feed_server: FeedServer, host: str, shown: str
) -> None:
    url = f"http://{host}:{feed_server.port}{FEED}"

    with pytest.raises(BlockedAddress) as caught:
        await guarded.fetch(url, now=NOW)

    assert str(caught.value) == (
        f"refused loopback address {shown} (fetch.allow_private_networks is false)"
    )
    assert feed_server.connections == 0
    assert not feed_server.requests


@pytest.mark.parametrize(
    ("host", "kind"),
    [("[2002:7f00:1::1]", "loopback"), ("[2001:0:808:808:8000:0:f5ff:fffe]", "private")],
)
async def test_6to4_and_teredo_literals_carrying_private_ipv4_refused(
    guarded: Fetcher, feed_server: FeedServer, host: str, kind: str
) -> None:
    """A relay would deliver to the IPv4 address inside (127.0.0.1, 10.0.0.1)."""
    with pytest.raises(BlockedAddress, match=rf"^refused {kind} address {host[1:-1]} \("):
        await guarded.fetch(f"http://{host}:{feed_server.port}{FEED}", now=NOW)

    assert feed_server.connections == 0


async def test_localhost_refused_by_resolver_without_connecting(
    guarded: Fetcher, feed_server: FeedServer
) -> None:
    with pytest.raises(BlockedAddress, match=r"^refused loopback address \S+ for localhost \("):
        await guarded.fetch(f"http://localhost:{feed_server.port}{FEED}", now=NOW)

    assert feed_server.connections == 0


@pytest.fixture
def loopback_127_0_0_1_counts_as_public() -> Iterator[None]:
    """Let the guarded fetcher reach the test server, and only it.

    The server can only listen on loopback, so to see a *redirect* to a private
    address refused, 127.0.0.1 plays the public host and 127.0.0.2 the private one.
    """
    real = _netguard.address_kind

    def kind(address: _netguard.IPAddress) -> str | None:
        return None if str(address) == "127.0.0.1" else real(address)

    _netguard._literal_kind.cache_clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_netguard, "address_kind", kind)
        yield
    _netguard._literal_kind.cache_clear()


@pytest.mark.usefixtures("loopback_127_0_0_1_counts_as_public")
async def test_redirect_to_private_address_refused_at_that_hop(
    guarded: Fetcher, feed_server: FeedServer
) -> None:
    target = f"http://127.0.0.2:{feed_server.port}{FEED}"

    with pytest.raises(BlockedAddress, match=r"^refused loopback address 127\.0\.0\.2 \("):
        await guarded.fetch(feed_server.url(f"/redirect-to?url={target}"), now=NOW)

    assert feed_server.requests["/redirect-to"] == 1  # the "public" first hop was fetched
    assert feed_server.requests[FEED] == 0


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("file:///etc/passwd", "file"),
        ("ftp://example.vn/feed.xml", "ftp"),
        ("gopher://x/", "gopher"),
    ],
)
async def test_non_http_schemes_refused(guarded: Fetcher, url: str, scheme: str) -> None:
    with pytest.raises(BlockedAddress, match=rf"^unsupported scheme '{scheme}'$"):
        await guarded.fetch(url, now=NOW)


class _FixedResolver(AbstractResolver):
    """Answers every lookup with the given addresses, as a DNS server would."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        pass


async def test_resolver_drops_private_answers_and_keeps_public_ones() -> None:
    resolver = _netguard.PublicOnlyResolver(
        _FixedResolver("10.0.0.7", "93.184.216.34", "::ffff:192.168.1.1", "2606:4700::1")
    )

    answers = await resolver.resolve("rebind.example.vn", 443)

    assert [a["host"] for a in answers] == ["93.184.216.34", "2606:4700::1"]


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("169.254.169.254", "link-local"),
        ("10.1.2.3", "private"),
        ("fd00::1", "private"),
        ("::", "unspecified"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-public"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::7f00:1", "loopback"),
        ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
        ("2002:c0a8:101::1", "private"),  # 6to4 of 192.168.1.1
        ("2001:0:808:808:8000:0:80ff:fffe", "loopback"),  # Teredo client 127.0.0.1
    ],
)
async def test_resolver_refuses_when_only_private_answers_remain(address: str, kind: str) -> None:
    resolver = _netguard.PublicOnlyResolver(_FixedResolver(address))

    with pytest.raises(
        BlockedAddress, match=rf"^refused {kind} address {address} for intranet\.vn"
    ):
        await resolver.resolve("intranet.vn", 80)
