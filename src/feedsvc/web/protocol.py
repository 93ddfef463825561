"""uvicorn's HTTP/1.1 protocols (httptools, and h11) with deadlines for reading a request.

uvicorn (0.55) has ``timeout_keep_alive``, armed only after a response, and
``limit_concurrency``; nothing bounds how long a client may take to send its
request. A connection that sends nothing, or its headers or body a byte at a
time, was held as long as the client liked: 300 such clients held 300 sockets.
Here each phase of reading a request has a deadline for the whole phase (a
client sending a byte every few seconds resets no timer):

==============================  ====================================================
phase                           ends, or else
==============================  ====================================================
headers: from the connection,   ``header_timeout``: 408 if part of a request came,
or a request's first byte,      otherwise the connection is closed without a word
until the blank line
body: from the headers to the   ``body_timeout``: 408 if the app has not answered
body's last byte                yet; the app sees the client as disconnected
idle between requests           ``keep_alive_timeout`` (uvicorn's own timer)
==============================  ====================================================

The 408 is written straight to the socket, which is then closed: neither parser
can answer a request it has not finished reading, and nothing more is read anyway.
The service serves with httptools (``HttpToolsDeadlineProtocol``); the h11
protocol (``DeadlineProtocol``) is kept for ``protocol_class(..., "h11")``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, ClassVar, Literal

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("feedsvc.web")

Phase = Literal["header", "body"]
Parser = Literal["httptools", "h11"]
_BODY = b"request timeout\n"


@dataclass(frozen=True, slots=True)
class Deadlines:
    """Seconds a client has for a request's headers, and then for its body."""

    header: float
    body: float


class _Phases:
    """The deadline of the phase a connection is in, whatever parses its requests."""

    def __init__(self, protocol: H11Protocol | HttpToolsProtocol, deadlines: Deadlines) -> None:
        self.protocol = protocol
        self.deadlines = deadlines
        self.phase: Phase | None = None
        self._timer: asyncio.TimerHandle | None = None

    def enter(self, phase: Phase | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.phase = phase
        if phase is not None:
            seconds = self.deadlines.header if phase == "header" else self.deadlines.body
            self._timer = self.protocol.loop.call_later(seconds, self._expired)

    def _expired(self) -> None:
        """The phase's deadline passed: answer 408 where an answer is due, and close."""
        self._timer = None
        protocol = self.protocol
        if protocol.transport.is_closing():
            return
        cycle = protocol.cycle if self.phase == "body" else None
        begun = self.phase == "body" or _request_begun(protocol)
        if begun and not (cycle is not None and cycle.response_started):
            protocol.transport.write(_request_timeout())
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's receive() says http.disconnect
            cycle.message_event.set()
        log.debug("request too slow", extra={"fields": {"phase": self.phase}})
        protocol.transport.close()


def _request_begun(protocol: H11Protocol | HttpToolsProtocol) -> bool:
    if isinstance(protocol, HttpToolsDeadlineProtocol):
        return protocol.reading == "header" and protocol.begun
    return isinstance(protocol, H11Protocol) and bool(protocol.conn.trailing_data[0])


class _Deadlined(asyncio.Protocol):
    """What both protocols do alike: a header deadline from the connection, none after it."""

    deadlines: ClassVar[Deadlines] = Deadlines(header=10, body=30)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phases = _Phases(self, self.deadlines)  # type: ignore[arg-type]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._phases.enter("header")

    def connection_lost(self, exc: Exception | None) -> None:
        self._phases.enter(None)
        super().connection_lost(exc)


class DeadlineProtocol(_Deadlined, H11Protocol):
    """H11Protocol with the deadlines above; make one with :func:`protocol_class`."""

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow(arrived=True)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow(arrived=bool(self.conn.trailing_data[0]))  # a pipelined request

    def _follow(self, *, arrived: bool) -> None:
        """Move to the phase h11's reading of the client says we are in."""
        state = self.conn.their_state
        phase: Phase | None = None
        if state is h11.SEND_BODY:
            phase = "body"
        elif state is h11.IDLE and (arrived or self._phases.phase == "header"):
            phase = "header"  # a request has begun (never restarted: a deadline, not idle)
        if phase != self._phases.phase:
            self._phases.enter(phase)


class HttpToolsDeadlineProtocol(_Deadlined, HttpToolsProtocol):
    """uvicorn's httptools protocol with the same deadlines, followed through the parser's
    callbacks: a request's first byte starts its header phase, the end of its headers its
    body phase, its last byte ends both. Timers are set once per ``data_received``, so a
    request that arrives whole (the usual case) costs none."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reading: Phase | None = "header"  # from the connection: its first request
        self.begun = False  # a byte of the request being read has come

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.reading, self.begun = "header", True

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self.reading = "body"

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.reading, self.begun = None, False

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def _follow(self) -> None:
        if self.reading != self._phases.phase and not self.transport.is_closing():
            self._phases.enter(self.reading)


def _request_timeout() -> bytes:
    head = (
        "HTTP/1.1 408 Request Timeout\r\n"
        f"date: {formatdate(usegmt=True)}\r\n"
        "content-type: text/plain; charset=utf-8\r\n"
        "x-content-type-options: nosniff\r\n"
        f"content-length: {len(_BODY)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + _BODY


def protocol_class(
    deadlines: Deadlines, parser: Parser | None = None
) -> type[DeadlineProtocol | HttpToolsDeadlineProtocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` with these deadlines.

    ``parser`` is ``"httptools"`` (the default: llhttp costs a fraction of h11's
    CPU per request) or ``"h11"``. uvicorn makes one protocol per connection
    from the class alone, so the deadlines travel as a class attribute of a
    subclass made for this server.
    """
    base: type[DeadlineProtocol | HttpToolsDeadlineProtocol] = (
        DeadlineProtocol if parser == "h11" else HttpToolsDeadlineProtocol
    )
    return type(base.__name__, (base,), {"deadlines": deadlines})
