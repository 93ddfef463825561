"""Running a test server's own event loop in a background thread.

For clients that are not on the test's loop: a subprocess (the running service),
synchronous code, or a benchmark that must not share a loop.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any, Protocol, Self


class AsyncServer(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class InThread:
    """``server`` started on a new loop in a daemon thread; attributes delegate to it."""

    def __init__(self, server: AsyncServer, name: str) -> None:
        self.server = server
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self.server.start())
            except BaseException as exc:  # reported to start()'s caller
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.server.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name=self._name, daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            raise failure[0]

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._loop = self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.server, name)
