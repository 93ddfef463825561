"""A real HTTP server on 127.0.0.1 for tests: feeds from a directory, plus scripted misbehaviour.

Fetch, poll, benchmark and end-to-end tests all talk to this one server, so it
behaves like a real publisher (validators, 304s, keep-alive) and misbehaves on
request. Routes:

=======================================  ===============================================
``/feeds/NAME``                          ``ROOT/NAME`` with ETag, Last-Modified and 304s;
                                         ``?type=text/html`` overrides the Content-Type,
                                         ``?claim=gzip`` sends that Content-Encoding on
                                         the uncompressed file (a broken server)
``/plain/NAME?delay=S``                   the same file with no validators and never a 304
                                         (servers that ignore conditional GET), after S
                                         seconds if given (article pages, a slow site)
``/rolling/NAME``                        the same file with no validators, changed as most
                                         news sites change theirs on every request: a
                                         ``<lastBuildDate>`` of now and one new item
                                         (the Nth request's) before the first ``<item>``
``/encoded/ENC/NAME``                    the same file compressed: ENC is ``gzip``,
                                         ``deflate``, ``deflate-raw`` (sent as ``deflate``)
                                         or ``br``
``/redirect/CODE/REST``                  CODE with the relative ``Location: /REST``;
                                         nest them for chains (``/redirect/301/redirect/
                                         301/feeds/a.xml``)
``/redirect-abs/CODE/REST``              the same with an absolute Location
``/redirect-to?code=302&url=U``          CODE to any URL U (another scheme, host, ...)
``/loop/a``, ``/loop/b``                 302 to each other, forever
``/status/CODE?retry_after=V``           that status, with ``Retry-After: V`` if given
``/bomb/ENC?size=N``                     N zeros (default 10 MB) compressed with ENC
                                         (``gzip``, ``deflate`` or ``br``); gzip and
                                         deflate cost the server nothing for any N
``/endless``                             200 with a body that never ends
``/slow?bytes=N&interval=S``             one byte every S seconds (default 1)
``/lying-length?length=N``               declares Content-Length N, sends 5 bytes, stalls
``/truncated``                           declares 1000 bytes, sends 5, closes the connection
=======================================  ===============================================

Use it as ``async with FeedServer(root) as server:`` in an async test, as
``with ThreadedFeedServer(root) as server:`` when the client is a subprocess or
synchronous code, or run ``python -m tests.feedserver ROOT [--port N]`` from the
repository root to get a separate process (it prints its base URL), e.g. so that
a benchmark's CPU time is the client's alone.

``server.requests[path]`` counts requests, ``server.received`` keeps each
request's headers, ``server.connections`` counts accepted TCP connections,
``server.most_at_once`` the most requests it was answering at one time, and
``server.write(name, content)`` edits a feed between requests.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import itertools
import os
import signal
import struct
import sys
import time
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Self

import brotli  # type: ignore[import-untyped]
from aiohttp import web
from aiohttp.typedefs import Handler

from tests._background import InThread

HOST = "127.0.0.1"
_CONTENT_TYPES = {
    ".xml": "application/xml; charset=utf-8",
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".pdf": "application/pdf",
}
_MiB = 1 << 20
# Allocated once at import, so that a test measuring its own peak memory while a
# bomb is served does not count the server's zeros.
_ZERO_MiB = bytes(_MiB)


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class _File:
    body: bytes
    etag: str
    mtime: int  # whole seconds, as Last-Modified carries them
    last_modified: str
    content_type: str


class FeedServer:
    """The server, run on the current event loop (see the module docstring)."""

    def __init__(self, root: Path, *, port: int = 0, hosts: int = 1) -> None:
        """``hosts`` > 1 also listens on 127.0.0.2 … 127.0.0.HOSTS (all loopback on
        Linux), same port: a benchmark's sources then sit on several hosts, as
        real ones do, and a client's per-host limit binds as it would."""
        self.root = Path(root)
        self.hosts = [HOST, *(f"127.0.0.{n}" for n in range(2, hosts + 1))]
        self.requests: Counter[str] = Counter()
        self.received: list[Received] = []
        self.connections = 0
        self.most_at_once = 0
        self._at_once = 0
        self._port = port
        self._files: dict[Path, tuple[int, int, _File]] = {}
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self._others: asyncio.Server | None = None  # the other hosts' listeners

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Listen on 127.0.0.1 (on a free port unless one was given)."""
        app = web.Application(middlewares=[self._record])
        app.add_routes(self._routes())
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.25)
        await self._runner.setup()
        protocol = self._runner.server
        assert protocol is not None

        def accept() -> web.RequestHandler:
            # Counted here, at accept time, so a test can prove that a refused
            # fetch never even opened a connection.
            self.connections += 1
            return protocol()

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(accept, HOST, self._port)
        self._port = self._server.sockets[0].getsockname()[1]
        if len(self.hosts) > 1:
            self._others = await loop.create_server(accept, self.hosts[1:], self._port)

    async def stop(self) -> None:
        """Close the listener and every open connection, endless bodies included."""
        servers = [server for server in (self._server, self._others) if server is not None]
        for server in servers:
            server.close()
        if self._runner is not None:
            await self._runner.cleanup()
        for server in servers:
            await server.wait_closed()
        self._server = self._others = self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- what tests use ----------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self._port}"

    @property
    def base_urls(self) -> list[str]:
        """One base URL per host (see ``hosts``)."""
        return [f"http://{host}:{self._port}" for host in self.hosts]

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` (``/feeds/a.xml`` or ``feeds/a.xml``)."""
        return f"{self.base_url}/{path.lstrip('/')}"

    def headers_for(self, path: str) -> list[Mapping[str, str]]:
        """The headers of every request to ``path``, oldest first."""
        return [r.headers for r in self.received if r.path == path]

    def reset(self) -> None:
        """Forget the requests and connections seen so far."""
        self.requests.clear()
        self.received.clear()
        self.connections = 0
        self.most_at_once = 0

    def write(self, name: str, content: bytes | str) -> Path:
        """Create or edit ``ROOT/name``; its Last-Modified always moves forward.

        The mtime is pushed at least one second past the previous one, because
        Last-Modified has one-second resolution and tests edit faster than that.
        """
        path = self._path(name)
        previous = path.stat().st_mtime if path.exists() else 0.0
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        stamp = max(time.time(), int(previous) + 1.0)
        os.utime(path, (stamp, stamp))
        return path

    # -- routes ------------------------------------------------------------------

    def _routes(self) -> list[web.RouteDef]:
        return [
            web.get("/feeds/{name:.+}", self._feed),
            web.get("/plain/{name:.+}", self._plain),
            web.get("/rolling/{name:.+}", self._rolling),
            web.get("/encoded/{encoding}/{name:.+}", self._feed),
            web.get(r"/redirect/{code:\d+}/{rest:.*}", self._redirect),
            web.get(r"/redirect-abs/{code:\d+}/{rest:.*}", self._redirect),
            web.get("/redirect-to", self._redirect_to),
            web.get("/loop/{name}", self._loop),
            web.get(r"/status/{code:\d+}", self._status),
            web.get("/bomb/{encoding}", self._bomb),
            web.get("/endless", self._endless),
            web.get("/slow", self._slow),
            web.get("/lying-length", self._lying_length),
            web.get("/truncated", self._truncated),
        ]

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests[request.path] += 1
        self.received.append(
            Received(request.method, request.path, request.query_string, request.headers.copy())
        )
        self._at_once += 1
        self.most_at_once = max(self.most_at_once, self._at_once)
        try:
            return await handler(request)
        finally:
            self._at_once -= 1

    async def _feed(self, request: web.Request) -> web.Response:
        feed = self._load(request.match_info["name"])
        encoding = request.match_info.get("encoding")
        etag = feed.etag if encoding is None else f'{feed.etag[:-1]}-{encoding}"'
        headers = {"ETag": etag, "Last-Modified": feed.last_modified}
        if _not_modified(request, etag, feed.mtime):
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = request.query.get("type", feed.content_type)
        body = feed.body
        if encoding is not None:
            body = _compress(encoding, body)
            headers["Content-Encoding"] = encoding.removesuffix("-raw")
        elif "claim" in request.query:
            headers["Content-Encoding"] = request.query["claim"]
        return web.Response(body=body, headers=headers)

    async def _plain(self, request: web.Request) -> web.Response:
        feed = self._load(request.match_info["name"])
        if "delay" in request.query:
            await _idle(request, float(request.query["delay"]))
        return web.Response(body=feed.body, headers={"Content-Type": feed.content_type})

    async def _rolling(self, request: web.Request) -> web.Response:
        feed = self._load(request.match_info["name"])
        number = self.requests[request.path]  # this request's, counted by _record
        at = feed.body.find(b"<item")
        if at < 0:
            raise web.HTTPNotFound()
        body = feed.body[:at] + rolling_item(request.match_info["name"], number) + feed.body[at:]
        return web.Response(body=body, headers={"Content-Type": feed.content_type})

    async def _redirect(self, request: web.Request) -> web.Response:
        location = "/" + request.match_info["rest"]
        if request.query_string:
            location += "?" + request.query_string
        if request.path.startswith("/redirect-abs/"):
            location = self.base_url + location
        return _redirect_response(int(request.match_info["code"]), location)

    async def _redirect_to(self, request: web.Request) -> web.Response:
        return _redirect_response(int(request.query.get("code", "302")), request.query["url"])

    async def _loop(self, request: web.Request) -> web.Response:
        other = "b" if request.match_info["name"] == "a" else "a"
        return _redirect_response(302, f"/loop/{other}")

    async def _status(self, request: web.Request) -> web.Response:
        headers = {}
        if "retry_after" in request.query:
            headers["Retry-After"] = request.query["retry_after"]
        return web.Response(status=int(request.match_info["code"]), text="no feed", headers=headers)

    async def _bomb(self, request: web.Request) -> web.StreamResponse:
        encoding = request.match_info["encoding"]
        size = int(request.query.get("size", 10_000_000))
        length, chunks = _bomb(encoding, size)
        response = web.StreamResponse(
            headers={"Content-Type": "application/rss+xml", "Content-Encoding": encoding}
        )
        response.content_length = length
        await response.prepare(request)
        for chunk in chunks:
            if not await _write(response, chunk):
                break
        return response

    async def _endless(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        await response.prepare(request)
        filler = b"<!-- endless -->" * 4096
        ok = await _write(response, b"<rss><channel>")
        while ok:
            ok = await _write(response, filler)
        return response

    async def _slow(self, request: web.Request) -> web.StreamResponse:
        size = int(request.query.get("bytes", 60))
        interval = float(request.query.get("interval", 1.0))
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        response.content_length = size
        await response.prepare(request)
        for _ in range(size):
            if not await _write(response, b" ") or not await _idle(request, interval):
                break
        return response

    async def _lying_length(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        response.content_length = int(request.query.get("length", 10**9))
        await response.prepare(request)
        if await _write(response, b"<rss>"):
            await _idle(request, 3600.0)
        return response

    async def _truncated(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        response.content_length = 1000
        await response.prepare(request)
        await _write(response, b"<rss>")
        if request.transport is not None:
            request.transport.close()
        return response

    # -- files -------------------------------------------------------------------

    def _path(self, name: str) -> Path:
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise web.HTTPNotFound()
        return path

    def _load(self, name: str) -> _File:
        """The file's body and validators, re-read only when its mtime or size changed."""
        path = self._path(name)
        try:
            stat = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise web.HTTPNotFound() from None
        cached = self._files.get(path)
        if cached is not None and cached[:2] == (stat.st_mtime_ns, stat.st_size):
            return cached[2]
        body = path.read_bytes()
        feed = _File(
            body=body,
            etag=f'"{hashlib.sha1(body).hexdigest()[:16]}"',
            mtime=int(stat.st_mtime),
            last_modified=formatdate(int(stat.st_mtime), usegmt=True),
            content_type=_CONTENT_TYPES.get(path.suffix, "application/octet-stream"),
        )
        self._files[path] = (stat.st_mtime_ns, stat.st_size, feed)
        return feed


def _not_modified(request: web.Request, etag: str, mtime: int) -> bool:
    """RFC 9110 section 13.2.2: If-None-Match wins; If-Modified-Since only without it."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in tags or etag in tags
    if_modified_since = request.headers.get("If-Modified-Since")
    if if_modified_since is None:
        return False
    try:
        return mtime <= parsedate_to_datetime(if_modified_since).timestamp()
    except (TypeError, ValueError):
        return False


def rolling_item(name: str, number: int) -> bytes:
    """What a ``/rolling/`` request adds: a build date of now and its own new item."""
    link = f"https://rolling.example.vn/{name}/{number}.html"
    return (
        f"<lastBuildDate>{formatdate(usegmt=True)}</lastBuildDate>\n"
        f"<item><title>Tin mới số {number}</title><link>{link}</link><guid>{link}</guid>"
        f"<description>Bản tin mới thứ {number} của {name}.</description>"
        f"<pubDate>{formatdate(usegmt=True)}</pubDate></item>\n"
    ).encode()


def _redirect_response(code: int, location: str) -> web.Response:
    return web.Response(status=code, headers={"Location": location}, text="moved")


async def _write(response: web.StreamResponse, data: bytes) -> bool:
    """Write, reporting False instead of raising once the client has gone."""
    try:
        await response.write(data)
    except ConnectionError:
        return False
    return True


async def _idle(request: web.Request, seconds: float) -> bool:
    """Sleep up to ``seconds``; False as soon as the client has disconnected."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            return False
        await asyncio.sleep(min(0.05, seconds))
    return True


def _compress(encoding: str, body: bytes) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "deflate":
        return zlib.compress(body)
    if encoding == "deflate-raw":
        packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        return packer.compress(body) + packer.flush()
    if encoding == "br":
        return bytes(brotli.compress(body))
    raise web.HTTPNotFound(text=f"unknown encoding {encoding}")


def _bomb(encoding: str, size: int) -> tuple[int, Iterator[bytes]]:
    """``size`` zeros, compressed: the stream's length, and the stream in chunks.

    gzip and deflate streams are built from one compressed MiB of zeros
    repeated: each block ends with a full flush, which resets the compressor,
    so the same ~1 KB stands for every MiB and any size costs the server
    nothing but the checksum at the very end (computed only if a client reads
    that far).
    """
    if encoding == "br":
        body = _brotli_zeros(size)
        return len(body), iter((body,))
    if encoding not in ("gzip", "deflate"):
        raise web.HTTPNotFound(text=f"unknown encoding {encoding}")
    whole, rest = divmod(size, _MiB)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" if encoding == "gzip" else b"\x78\xda"
    tail = _deflated_zeros(rest) + b"\x03\x00"  # the rest, then an empty final block
    length = len(header) + whole * len(_deflated_zeros(_MiB)) + len(tail)
    length += 8 if encoding == "gzip" else 4
    chunks = itertools.chain(
        (header,),
        itertools.repeat(_deflated_zeros(_MiB), whole),
        (tail,),
        (_trailer(encoding, whole, rest) for _ in (1,)),
    )
    return length, chunks


@cache
def _deflated_zeros(size: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return packer.compress(memoryview(_ZERO_MiB)[:size]) + packer.flush(zlib.Z_FULL_FLUSH)


@cache
def _brotli_zeros(size: int) -> bytes:
    if size > 256 * _MiB:
        raise web.HTTPBadRequest(text="br bombs are limited to 256 MiB")
    packer = brotli.Compressor(quality=5)
    whole, rest = divmod(size, _MiB)
    parts = [packer.process(_ZERO_MiB) for _ in range(whole)]
    parts.append(packer.process(_ZERO_MiB[:rest]))
    parts.append(packer.finish())
    return b"".join(parts)


@cache
def _trailer(encoding: str, whole: int, rest: int) -> bytes:
    """The gzip (CRC-32, size) or zlib (Adler-32) trailer of ``whole`` MiB + ``rest`` zeros."""
    checksum = zlib.crc32 if encoding == "gzip" else zlib.adler32
    value = checksum(b"")
    for _ in range(whole):
        value = checksum(_ZERO_MiB, value)
    value = checksum(memoryview(_ZERO_MiB)[:rest], value)
    if encoding == "gzip":
        return struct.pack("<II", value, (whole * _MiB + rest) & 0xFFFFFFFF)
    return struct.pack(">I", value)


class ThreadedFeedServer(InThread):
    """A `FeedServer` on its own event loop in a background thread."""

    def __init__(self, root: Path, *, port: int = 0) -> None:
        super().__init__(FeedServer(root, port=port), "feedserver")


def main() -> None:
    """``python -m tests.feedserver ROOT [--port N] [--hosts N]``: serve until SIGINT or
    SIGTERM; the first line out is the base URLs, separated by spaces."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("root", type=Path)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--hosts", type=int, default=1, help="listen on 127.0.0.1 … 127.0.0.N")
    args = parser.parse_args()

    async def serve() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopping.set)
        async with FeedServer(args.root, port=args.port, hosts=args.hosts) as server:
            sys.stdout.write(" ".join(server.base_urls) + "\n")
            sys.stdout.flush()
            await stopping.wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
