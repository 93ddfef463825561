"""Text a feed server chooses reaches the operator's terminal as the characters it is.

A reason phrase or a header value is the server's to write: rich markup in it
(``[/x]`` with no opening tag even raised MarkupError) and terminal escape
sequences (OSC 0 sets the window title, OSC 8 hides a link behind other text,
CSI paints or clears the screen) must be shown, never obeyed. The server here
writes raw bytes, so nothing on the way tidies them up first.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._background import InThread
from tests.e2e.test_cli import feedsvc, make_config

MARKUP = "[/x] [bold red]BOOM"
TITLE = "\x1b]0;pwned\x07"  # OSC 0: the terminal window's title
LINK = "\x1b]8;;http://evil.example/\x1b\\click here\x1b]8;;\x1b\\"  # OSC 8 hyperlink
CSI = "\x1b[2J\x1b[31m\x9b31m"  # clear the screen, red (also as the 8-bit C1 CSI)

RESPONSES = {
    "/reason": f"HTTP/1.1 599 {MARKUP} {TITLE} {LINK} {CSI}RED\r\nContent-Length: 0\r\n",
    "/encoding": f"HTTP/1.1 200 OK\r\nContent-Encoding: [bold]br{CSI}\r\nContent-Length: 3\r\n",
    "/location": f"HTTP/1.1 302 Found\r\nLocation: http://[bold]{CSI}/\r\nContent-Length: 0\r\n",
}


class ScriptedServer:
    """Answers each path in RESPONSES with exactly those bytes (Latin-1, as HTTP/1.1 is)."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readline()
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        path = request.split()[1].decode() if len(request.split()) > 1 else "/"
        head = RESPONSES.get(path, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n")
        writer.write(head.encode("latin-1") + b"Connection: close\r\n\r\n")
        if "Content-Length: 3" in head:
            writer.write(b"abc")
        await writer.drain()
        writer.close()


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    with InThread(server, "scripted-http"):
        yield server


@pytest.fixture
def config(tmp_path: Path, scripted: ScriptedServer) -> Path:
    base = f"http://127.0.0.1:{scripted.port}"
    return make_config(tmp_path, {path.strip("/"): base + path for path in RESPONSES})


def assert_shown_not_obeyed(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    output = result.stdout + result.stderr
    for control in ("\x1b", "\x07", "\x9b"):
        assert control not in output
    assert MARKUP in result.stdout
    assert "]0;pwned" in result.stdout  # what is left of the sequence is plain text
    assert "[bold]br" in result.stdout


def test_poll_and_sources_list_show_remote_text_literally(config: Path) -> None:
    polled = feedsvc("poll", config=config)
    assert_shown_not_obeyed(polled)
    assert "3 polled, 0 new, 3 failed" in polled.stdout

    for _ in range(2):  # the stored error used to break every later run too
        assert_shown_not_obeyed(feedsvc("sources", "list", config=config))

    listed = feedsvc("sources", "list", "--json", config=config)
    errors = {source["id"]: source["last_error"] for source in json.loads(listed.stdout)}
    assert errors["reason"].startswith(f"HTTP 599 {MARKUP} ]0;pwned")
    for error in errors.values():  # stored without control characters
        assert error
        assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in error), error
