"""The ``Date`` header (RFC 9110, section 6.6.1) without a timer.

uvicorn keeps the header fresh by waking every tenth of a second; an idle
service should not wake at all. This middleware adds it when a response
starts instead, formatting the date at most once per second.
"""

from __future__ import annotations

import time
from email.utils import formatdate

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class DateHeader:
    """Wraps an ASGI app; use it with uvicorn's own ``date_header=False``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._second = -1
        self._value = b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_dated(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"date", self._now())]
            await send(message)

        await self.app(scope, receive, send_dated)

    def _now(self) -> bytes:
        second = int(time.time())
        if second != self._second:
            self._second, self._value = second, formatdate(second, usegmt=True).encode()
        return self._value
