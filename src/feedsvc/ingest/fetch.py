"""The fetch stage: one polite, bounded conditional GET per source (DESIGN invariant 3).

`Fetcher.fetch` turns a URL and the validators kept from the last poll into a
`FetchResult`, or raises one `FetchError` subclass whose one-line message says
what happened and where. What it promises the operator:

* conditional GET (If-None-Match / If-Modified-Since) and a real User-Agent;
* gzip, deflate and br, decoded here rather than by aiohttp, so that ``max_bytes``
  caps the *decompressed* stream as it is read: a decompression bomb stops at the
  cap and memory stays near it, whatever aiohttp version is installed;
* one deadline over the whole fetch (redirects, slow bodies, endless bodies);
* redirects followed by hand, so every hop is checked (scheme, address) and
  ``permanent_url`` is set only when every hop was permanent (301/308);
* no connection to private networks unless allowed (see `_netguard`).

One `aiohttp.ClientSession` serves every fetch, so connections to a host are
kept alive across its sources: most of a few thousand sources answer 304 every
few minutes, and the per-request cost is what the service spends its CPU on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from http import HTTPStatus
from types import TracebackType
from typing import NamedTuple, Protocol, Self

import aiohttp
import brotli  # type: ignore[import-untyped]
from aiohttp import hdrs
from yarl import URL

from feedsvc._text import clean_line
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
from feedsvc.ingest._netguard import PublicOnlyResolver, check_literal_host
from feedsvc.model import FetchResult

__all__ = ["FetchPolicy", "Fetcher"]

_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
)
_ACCEPT_ENCODING = "gzip, deflate, br"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PERMANENT = frozenset({301, 308})
_SCHEMES = frozenset({"http", "https"})
# The most a decoder inflates per call: the cap is checked between calls, so a
# bomb overshoots it by at most about this much.
_STEP = 64 * 1024
# Retry-After is honoured up to a year; beyond that it is clamped, which also
# keeps a hostile value from overflowing datetime.
_MAX_RETRY_AFTER_S = 365 * 24 * 3600


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """How every fetch behaves; built from config.yaml's ``fetch`` section.

    ``timeout`` is a total deadline in seconds for one fetch (all redirect hops
    and the body); ``max_bytes`` caps the decompressed body.
    """

    user_agent: str
    timeout: float
    max_bytes: int
    allow_private_networks: bool = False
    max_redirects: int = 5
    per_host: int = 2


class _Redirect(NamedTuple):
    status: int
    location: str


class Fetcher:
    """One aiohttp ClientSession for many fetches.

    Use as ``async with Fetcher(policy, concurrency=20) as f: await f.fetch(...)``.
    At most ``concurrency`` fetches run at once, and at most ``policy.per_host``
    to one host; a fetch waiting for its host does not hold a global slot, and
    its deadline starts only once it runs.
    """

    def __init__(self, policy: FetchPolicy, *, concurrency: int = 20) -> None:
        self._policy = policy
        self._concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        self._session: aiohttp.ClientSession | None = None
        self._resolver: PublicOnlyResolver | None = None

    async def __aenter__(self) -> Self:
        policy = self._policy
        if not policy.allow_private_networks:
            self._resolver = PublicOnlyResolver()
        connector = aiohttp.TCPConnector(
            limit=self._concurrency,
            limit_per_host=policy.per_host,
            resolver=self._resolver,  # None: aiohttp's default
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers={
                hdrs.USER_AGENT: policy.user_agent,
                hdrs.ACCEPT: _ACCEPT,
                hdrs.ACCEPT_ENCODING: _ACCEPT_ENCODING,
            },
            auto_decompress=False,  # decoded by _read_body, under the cap
            cookie_jar=aiohttp.DummyCookieJar(),  # feeds need none; no state between sources
            timeout=aiohttp.ClientTimeout(),  # no aiohttp timers: fetch() has one deadline
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._resolver is not None:  # a resolver passed in is not closed by aiohttp
            await self._resolver.close()
            self._resolver = None

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        now: datetime,
        accept: str | None = None,
    ) -> FetchResult:
        """Conditionally GET ``url``, following redirects, within the policy's limits.

        Args:
            url: the source's current URL (http or https).
            etag, last_modified: validators from the previous 200, sent as
                If-None-Match / If-Modified-Since.
            now: aware UTC time, to turn Retry-After into an absolute time.
            accept: an Accept header instead of the feed types (an article page).

        Returns:
            The final response; ``body`` is None for 304 Not Modified.

        Raises:
            FetchError: one of its subclasses (see `feedsvc.errors`).
        """
        target = self._checked(_parse_url(url))
        headers = _conditional_headers(etag, last_modified)
        if accept:
            headers = {**(headers or {}), hdrs.ACCEPT: accept}
        async with self._host_slot(target), self._slots:
            try:
                async with asyncio.timeout(self._policy.timeout):
                    result = await self._follow(url, target, headers, now)
            except TimeoutError as exc:
                message = f"timed out after {self._policy.timeout:g} s fetching {target.host}"
                raise FetchTimeout(message) from exc
        if result.body is None and (
            (etag and not result.etag) or (last_modified and not result.last_modified)
        ):
            result = _keep_validators(result, etag, last_modified)
        return result

    @property
    def per_host(self) -> int:
        """How many fetches may run at once to one host."""
        return self._policy.per_host

    @staticmethod
    def host_of(url: str) -> str:
        """The key ``url``'s fetches share a per-host limit under ("" for a bad URL)."""
        try:
            return _parse_url(url).raw_host or ""
        except FetchError:
            return ""

    def _host_slot(self, target: URL) -> asyncio.Semaphore:
        host = target.raw_host or ""
        slot = self._host_slots.get(host)
        if slot is None:
            slot = self._host_slots[host] = asyncio.Semaphore(self._policy.per_host)
        return slot

    def _checked(self, target: URL) -> URL:
        """Refuse a URL this policy must not fetch: bad scheme, no host, private IP."""
        if target.scheme not in _SCHEMES:
            raise BlockedAddress(f"unsupported scheme {target.scheme!r}")
        host = target.host
        if not host:
            raise FetchError(f"invalid URL {str(target)!r}: no host")
        if not self._policy.allow_private_networks:
            check_literal_host(host)
        return target

    async def _follow(
        self, url: str, target: URL, headers: dict[str, str] | None, now: datetime
    ) -> FetchResult:
        """Request ``target`` and each redirect it leads to, up to ``max_redirects`` hops."""
        origin, seen, permanent = target, {target}, True
        for hop in range(self._policy.max_redirects + 1):
            answer = await self._request(target, url if hop == 0 else str(target), headers, now)
            if isinstance(answer, FetchResult):
                if hop and permanent:
                    answer = dataclasses.replace(answer, permanent_url=answer.url)
                return answer
            permanent = permanent and answer.status in _PERMANENT
            target = self._checked(_join(target, answer.location))
            if target in seen:
                raise TooManyRedirects(f"redirect loop at {target}")
            seen.add(target)
        raise TooManyRedirects(
            f"more than {self._policy.max_redirects} redirects from {origin.host}"
        )

    async def _request(
        self, target: URL, url: str, headers: dict[str, str] | None, now: datetime
    ) -> FetchResult | _Redirect:
        """Make one request; turn any transport failure into a one-line FetchError."""
        if self._session is None:
            raise RuntimeError("use Fetcher as `async with Fetcher(policy) as fetcher:`")
        try:
            async with self._session.get(
                target, headers=headers, allow_redirects=False
            ) as response:
                return await self._answer(response, url, now)
        except TimeoutError:
            raise  # the deadline, reported by fetch()
        except (aiohttp.ClientError, OSError) as exc:
            raise _transport_error(exc, target) from exc

    async def _answer(
        self, response: aiohttp.ClientResponse, url: str, now: datetime
    ) -> FetchResult | _Redirect:
        status = response.status
        headers = response.headers
        if status in _REDIRECTS and hdrs.LOCATION in headers:
            return _Redirect(status, headers[hdrs.LOCATION])
        if status >= 300 and status != 304:
            raise _status_error(response, now)
        body = None
        if status != 304:
            body = await _read_body(response, self._policy.max_bytes)
        return FetchResult(
            url,
            status,
            body,
            headers,
            etag=headers.get(hdrs.ETAG),
            last_modified=headers.get(hdrs.LAST_MODIFIED),
        )


@lru_cache(maxsize=16384)
def _parse_url(url: str) -> URL:
    """``url`` as a yarl URL; cached, as the same few thousand URLs are fetched every few
    minutes (a URL is immutable; the checks of `Fetcher._checked` still run every time)."""
    try:
        return URL(url)
    except (TypeError, ValueError) as exc:
        raise FetchError(f"invalid URL {url!r}") from exc


def _join(base: URL, location: str) -> URL:
    """Resolve a Location header (possibly relative) against the URL that sent it."""
    try:
        return base.join(URL(location)).with_fragment(None)
    except (TypeError, ValueError) as exc:
        raise FetchError(f"invalid redirect Location {location[:200]!r} from {base.host}") from exc


def _conditional_headers(etag: str | None, last_modified: str | None) -> dict[str, str] | None:
    """The validators to send, or None (no per-request dict) when there are none.

    A value with CR/LF is dropped rather than sent: it can only come from a
    corrupted store, and a conditional header is merely an optimisation.
    """
    if not etag and not last_modified:
        return None
    headers: dict[str, str] = {}
    if etag and "\n" not in etag and "\r" not in etag:
        headers[hdrs.IF_NONE_MATCH] = etag
    if last_modified and "\n" not in last_modified and "\r" not in last_modified:
        headers[hdrs.IF_MODIFIED_SINCE] = last_modified
    return headers


def _keep_validators(
    result: FetchResult, etag: str | None, last_modified: str | None
) -> FetchResult:
    """A 304 that omits a validator leaves the one we sent in force."""
    return dataclasses.replace(
        result,
        etag=result.etag or etag,
        last_modified=result.last_modified or last_modified,
    )


def _status_error(response: aiohttp.ClientResponse, now: datetime) -> HTTPStatusError:
    status = response.status
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = _one_line(response.reason or "unknown status", 60)
    message = f"HTTP {status} {reason} from {response.url.host}"
    retry_after = _retry_after(response.headers.get(hdrs.RETRY_AFTER), now)
    error_type = Gone if status == 410 else HTTPStatusError
    return error_type(status, message, retry_after)


def _retry_after(value: str | None, now: datetime) -> datetime | None:
    """Turn Retry-After (delta-seconds or an HTTP-date) into an aware UTC time."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return now.astimezone(UTC) + timedelta(seconds=min(int(value), _MAX_RETRY_AFTER_S))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC with no claim about local time
        when = when.replace(tzinfo=UTC)
    return min(when.astimezone(UTC), now + timedelta(seconds=_MAX_RETRY_AFTER_S))


# (exception type, message template); the first match wins, so subclasses first.
_TRANSPORT_MESSAGES: tuple[tuple[type[BaseException], str], ...] = (
    (aiohttp.ClientConnectorDNSError, "DNS lookup failed for {host}"),
    (aiohttp.ClientConnectorCertificateError, "TLS certificate of {host} rejected"),
    (aiohttp.ClientSSLError, "TLS handshake with {host} failed"),
    (aiohttp.ClientConnectorError, "cannot connect to {host}"),
    (aiohttp.ServerDisconnectedError, "{host} closed the connection"),
    (aiohttp.ClientPayloadError, "incomplete response body from {host}"),
    (aiohttp.ClientResponseError, "invalid HTTP response from {host}"),
)


def _transport_error(exc: BaseException, target: URL) -> FetchError:
    """Map an aiohttp/OS exception to a one-line FetchError naming the host."""
    if isinstance(exc, aiohttp.InvalidURL):
        return FetchError(f"invalid URL {str(target)!r}")
    template = "connection to {host} failed"
    for exc_type, candidate in _TRANSPORT_MESSAGES:
        if isinstance(exc, exc_type):
            template = candidate
            break
    detail = _one_line(getattr(exc, "strerror", None) or str(exc), 120)
    message = template.format(host=target.host)
    return ConnectError(f"{message} ({detail})" if detail else message)


def _one_line(text: str, limit: int) -> str:
    """Collapse whitespace and drop control characters (no CR/LF may reach a log line or
    the store, no escape sequence the operator's terminal), then truncate."""
    text = clean_line(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _size(n: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= scale:
            return f"{round(n / scale, 1):g} {unit}"
    return f"{n} bytes"


async def _read_body(response: aiohttp.ClientResponse, cap: int) -> bytes:
    """Read the body, decoded, raising TooLarge as soon as it passes ``cap`` bytes."""
    host = response.url.host
    decoder = _decoder_for(response.headers.get(hdrs.CONTENT_ENCODING), host)
    if decoder is None:
        return await _read_plain(response, cap)
    parts: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        for piece in decoder.decode(chunk):
            size += len(piece)
            if size > cap:
                raise TooLarge(f"body larger than {_size(cap)} (after decompression) from {host}")
            parts.append(piece)
    decoder.check_complete()
    return b"".join(parts)


async def _read_plain(response: aiohttp.ClientResponse, cap: int) -> bytes:
    """Read an unencoded body; a Content-Length over the cap is refused before reading."""
    host = response.url.host
    declared = response.content_length
    if declared is not None:
        if declared > cap:
            raise TooLarge(f"body larger than {_size(cap)} (Content-Length {declared}) from {host}")
        return await response.read()  # the parser stops at Content-Length
    parts: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > cap:
            raise TooLarge(f"body larger than {_size(cap)} from {host}")
        parts.append(chunk)
    return b"".join(parts)


class _Decoder(Protocol):
    def decode(self, data: bytes) -> Iterator[bytes]:
        """Yield the decoded bytes of ``data``, at most about ``_STEP`` at a time."""

    def check_complete(self) -> None:
        """Raise FetchError if the compressed stream stopped before its end."""


def _decoder_for(content_encoding: str | None, host: str | None) -> _Decoder | None:
    if not content_encoding:
        return None
    encoding = content_encoding.strip().lower()
    if encoding in ("gzip", "x-gzip"):
        return _ZlibDecoder("gzip", host)
    if encoding == "deflate":
        return _ZlibDecoder("deflate", host)
    if encoding == "br":
        return _BrotliDecoder(host)
    if encoding in ("", "identity"):
        return None
    raise FetchError(f"unsupported Content-Encoding {encoding[:40]!r} from {host}")


class _ZlibDecoder:
    """gzip or deflate, inflated at most ``_STEP`` bytes per call so a bomb cannot balloon.

    gzip may hold several members back to back (RFC 1952); bytes after the end
    of the stream that are not a new member are ignored, as browsers do.
    """

    __slots__ = ("_encoding", "_finished", "_host", "_obj")

    def __init__(self, encoding: str, host: str | None) -> None:
        self._encoding = encoding
        self._host = host
        self._obj: zlib._Decompress | None = None
        self._finished = False

    def decode(self, data: bytes) -> Iterator[bytes]:
        if self._finished:
            return
        obj = self._obj if self._obj is not None else self._start(data)
        try:
            while True:
                piece = obj.decompress(data, _STEP)
                if piece:
                    yield piece
                if obj.eof:
                    data = obj.unused_data
                    if self._encoding != "gzip" or not data.startswith(b"\x1f"):
                        self._finished = True
                        return
                    obj = self._start(data)
                    continue
                data = obj.unconsumed_tail
                if not data and len(piece) < _STEP:
                    return
        except zlib.error as exc:
            raise FetchError(f"corrupt {self._encoding} body from {self._host}") from exc

    def _start(self, data: bytes) -> zlib._Decompress:
        if self._encoding == "gzip":
            wbits = 16 + zlib.MAX_WBITS
        elif data[:1] and data[0] & 0x0F == 8:  # RFC 1950 zlib header, as the RFC says
            wbits = zlib.MAX_WBITS
        else:  # raw deflate, as some servers send
            wbits = -zlib.MAX_WBITS
        self._obj = zlib.decompressobj(wbits)
        return self._obj

    def check_complete(self) -> None:
        if self._obj is not None and not self._obj.eof:
            raise FetchError(f"truncated {self._encoding} body from {self._host}")


class _BrotliDecoder:
    """br, with brotli's output_buffer_limit (brotli >= 1.2) bounding each call."""

    __slots__ = ("_fed", "_host", "_obj")

    def __init__(self, host: str | None) -> None:
        self._host = host
        self._obj = brotli.Decompressor()
        self._fed = False

    def decode(self, data: bytes) -> Iterator[bytes]:
        obj = self._obj
        self._fed = True
        try:
            piece: bytes = obj.process(data, output_buffer_limit=_STEP)
            while True:
                if piece:
                    yield piece
                if obj.can_accept_more_data():
                    return
                piece = obj.process(b"", output_buffer_limit=_STEP)
        except brotli.error as exc:
            raise FetchError(f"corrupt br body from {self._host}") from exc

    def check_complete(self) -> None:
        if self._fed and not self._obj.is_finished():
            raise FetchError(f"truncated br body from {self._host}")
