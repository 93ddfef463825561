"""uvicorn's HTTP/1.1 protocol with deadlines for reading a request.

uvicorn (0.55, h11) has ``timeout_keep_alive``, armed only after a response, and
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

The 408 is written straight to the socket, which is then closed: h11 cannot
answer a request it has not finished reading, and nothing more is read anyway.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, ClassVar, Literal

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("feedsvc.web")

Phase = Literal["header", "body"]
_BODY = b"request timeout\n"


@dataclass(frozen=True, slots=True)
class Deadlines:
    """Seconds a client has for a request's headers, and then for its body."""

    header: float
    body: float


class DeadlineProtocol(H11Protocol):
    """H11Protocol with the deadlines above; make one with :func:`protocol_class`."""

    deadlines: ClassVar[Deadlines] = Deadlines(header=10, body=30)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase: Phase | None = None
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._enter("header")

    def connection_lost(self, exc: Exception | None) -> None:
        self._enter(None)
        super().connection_lost(exc)

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
        elif state is h11.IDLE and (arrived or self._phase == "header"):
            phase = "header"  # a request has begun (never restarted: a deadline, not idle)
        if phase != self._phase:
            self._enter(phase)

    def _enter(self, phase: Phase | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._phase = phase
        if phase is not None:
            seconds = self.deadlines.header if phase == "header" else self.deadlines.body
            self._deadline = self.loop.call_later(seconds, self._expired)

    def _expired(self) -> None:
        """The phase's deadline passed: answer 408 where an answer is due, and close."""
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle if self._phase == "body" else None
        begun = self._phase == "body" or bool(self.conn.trailing_data[0])
        if begun and not (cycle is not None and cycle.response_started):
            self.transport.write(_request_timeout())
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app's receive() says http.disconnect
            cycle.message_event.set()
        log.debug("request too slow", extra={"fields": {"phase": self._phase}})
        self.transport.close()


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


def protocol_class(deadlines: Deadlines) -> type[DeadlineProtocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` with these deadlines.

    uvicorn makes one protocol per connection from the class alone, so the
    deadlines travel as a class attribute of a subclass made for this server.
    """
    return type("DeadlineProtocol", (DeadlineProtocol,), {"deadlines": deadlines})
