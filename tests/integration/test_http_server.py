"""The HTTP server against clients that hold connections: raw sockets on 127.0.0.1 against
a real uvicorn serving the app, as `feedsvc run` embeds it and as `feedsvc serve` runs it.

A slow client sends every byte well within any idle timeout, so only a deadline
for the whole header block, or the whole body, cuts it off. Each test lets the
client go on far longer than the server's limit and checks that the server ended
the connection first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from feedsvc import config as config_module
from feedsvc.config import Config
from feedsvc.errors import ConfigError
from feedsvc.store import Store
from feedsvc.web import subscribe
from tests._net import free_port, running
from tests.integration.test_full_disk import sign_up
from tests.integration.test_observability import serving

HOST = "127.0.0.1"
LIMITS = {"header_timeout": "1s", "body_timeout": "2s", "keep_alive_timeout": "1s"}
PATIENCE = 4  # seconds a test client goes on: well beyond every limit above
CONFIG = """\
site:
  title: "Báo Hà Tĩnh — Bản tin"
  base_url: "http://127.0.0.1:8080"
http:
  port: {port}
{http}
categories:
  - id: xa-hoi
    title: "Xã hội"
newsletter:
  from: "Bản tin Hà Tĩnh <bantin@baohatinh.example>"
"""


def write_config(tmp_path: Path, port: int = 8080, **http: object) -> Path:
    lines = "\n".join(f"  {key}: {value}" for key, value in {**LIMITS, **http}.items())
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(port=port, http=lines), encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def server(tmp_path: Path, **http: object) -> AsyncIterator[tuple[int, Config]]:
    """The app under the embedded uvicorn (as `feedsvc run` has it); yields its port."""
    config = config_module.load(write_config(tmp_path, **http))
    store = Store.open(config.database_url)
    try:
        async with serving(config, store) as base:
            yield int(base.rsplit(":", 1)[1]), config
    finally:
        store.close()


@pytest.fixture
async def port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[int]:
    monkeypatch.delenv("FEEDSVC_SECRET_KEY", raising=False)
    async with server(tmp_path) as (number, _):
        yield number


async def trickle(port: int, head: bytes, body: bytes = b"", interval: float = 0.2) -> bytes:
    """Send ``head`` at once, then ``body`` a byte per ``interval`` (or, with no body, the
    head itself that way), for at most PATIENCE seconds; return what the server answered
    by the time it closed the connection."""
    reader, writer = await asyncio.open_connection(HOST, port)
    slow = body or head
    if body:
        writer.write(head)

    async def send() -> None:
        for byte in slow:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(interval)

    sender = asyncio.create_task(send())
    try:
        answer = await asyncio.wait_for(reader.read(), PATIENCE)  # until the server closes
        finished = sender.done()
    finally:
        sender.cancel()
        writer.close()
    assert not finished, "the client sent everything before the server cut it off"
    return answer


async def test_a_client_slow_to_send_its_headers_is_cut_off(port: int) -> None:
    head = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Padding: " + b"a" * 200 + b"\r\n\r\n"
    answer = await trickle(port, head)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in answer.lower()


async def test_a_client_slow_to_send_its_body_is_cut_off(
    port: int, caplog: pytest.LogCaptureFixture
) -> None:
    body = b"email=" + b"a" * 200
    head = (
        b"POST /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    answer = await trickle(port, head, body)
    assert answer.startswith(b"HTTP/1.1 408 ")
    await asyncio.sleep(0.1)  # the app has seen the disconnect: a quiet end, no traceback
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def idle_until_closed(reader: asyncio.StreamReader) -> bytes:
    """What the server sends until it closes an idle connection (PATIENCE at most)."""
    return await asyncio.wait_for(reader.read(), PATIENCE)


async def test_a_connection_that_never_sends_is_closed(port: int) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        assert await idle_until_closed(reader) == b""  # closed without a word
    finally:
        writer.close()


async def test_an_idle_keep_alive_connection_is_closed(port: int) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        assert await idle_until_closed(reader) == b""
    finally:
        writer.close()


async def get(port: int) -> int:
    async with (
        aiohttp.ClientSession() as client,
        client.get(f"http://{HOST}:{port}/healthz") as response,
    ):
        return response.status


async def test_over_max_connections_new_requests_get_503(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FEEDSVC_SECRET_KEY", raising=False)
    async with server(tmp_path, max_connections=4, header_timeout="30s") as (port, _):
        held = [await asyncio.open_connection(HOST, port) for _ in range(3)]
        assert await get(port) == 200  # the fourth connection
        held.append(await asyncio.open_connection(HOST, port))
        assert await get(port) == 503  # a fifth
        for _, writer in held:
            writer.close()
        await asyncio.sleep(0.2)  # the server sees them go
        assert await get(port) == 200


def test_feedsvc_serve_has_the_same_limits(tmp_path: Path) -> None:
    """`feedsvc serve` runs uvicorn itself (not embedded): the same protocol and limits."""
    port = free_port()
    config = write_config(tmp_path, port=port)
    env = {k: v for k, v in os.environ.items() if k != "FEEDSVC_SECRET_KEY"}
    command = [sys.executable, "-m", "feedsvc", "serve", "--config", str(config)]

    async def probe() -> None:
        await test_a_connection_that_never_sends_is_closed(port)
        head = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 200 + b"\r\n\r\n"
        assert (await trickle(port, head)).startswith(b"HTTP/1.1 408 ")

    with running(command, f"http://{HOST}:{port}/healthz", env):
        asyncio.run(probe())


# --- X-Forwarded-For: believed only from http.trusted_proxies ----------------------------


async def sign_ups_from(port: int, local: str, count: int) -> list[int]:
    """``count`` sign-ups from ``local``, each claiming (X-Forwarded-For) another client."""
    connector = aiohttp.TCPConnector(local_addr=(local, 0))
    jar = aiohttp.CookieJar(unsafe=True)
    statuses = []
    async with aiohttp.ClientSession(connector=connector, cookie_jar=jar) as client:
        for n in range(count):
            forwarded = {"X-Forwarded-For": f"203.0.113.{n + 1}"}
            email = f"doc.gia.{n}@example.vn"
            answer = await sign_up(client, f"http://{HOST}:{port}", email, forwarded)
            statuses.append(answer.status)
    return statuses


@pytest.mark.parametrize(
    ("trusted", "local", "limited"),
    [
        ("[]", "127.0.0.1", True),  # the default: nobody is a proxy, not even loopback
        ("[127.0.0.1]", "127.0.0.2", True),  # a proxy is trusted, this client is not it
        ("[127.0.0.0/30]", "127.0.0.2", False),  # through the trusted proxy: each its own
    ],
)
async def test_forwarded_for_is_believed_only_from_trusted_proxies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trusted: str, local: str, limited: bool
) -> None:
    monkeypatch.delenv("FEEDSVC_SECRET_KEY", raising=False)
    per_client, _ = subscribe.PER_CLIENT
    async with server(tmp_path, trusted_proxies=trusted) as (port, _):
        statuses = await sign_ups_from(port, local, per_client + 1)
    assert statuses[:per_client] == [200] * per_client
    assert statuses[-1] == (429 if limited else 200)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("[nonsense]", "'nonsense' is not an IP address or network (e.g. 127.0.0.1, 10.0.0.0/8)"),
        ('["10.0.0.1/8"]', "'10.0.0.1/8' has host bits set: write 10.0.0.0/8"),
    ],
)
def test_trusted_proxies_must_be_addresses_or_networks(
    tmp_path: Path, value: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        config_module.load(write_config(tmp_path, trusted_proxies=value))
    assert caught.value.problems == [
        f"{tmp_path / 'config.yaml'}:9: http.trusted_proxies[0]: {problem}"
    ]
