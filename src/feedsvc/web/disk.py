"""A full disk, as the web side meets it: ``/healthz`` fails before the disk is quite
full, and a write that fails for want of space is a friendly 503 page rather than a
bare 500.

The disk that matters is the one under the folders feedsvc writes (data_dir, the
outbox, a SQLite file's folder). Below ``FREE_SPACE_FLOOR`` the service still
answers but cannot be trusted to store a sign-up or record a delivery, so a load
balancer or monitor should hear about it while reads still work.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from feedsvc._text import clean_line
from feedsvc.config import Config

log = logging.getLogger("feedsvc.web")

FREE_SPACE_FLOOR = 16 * 2**20  # bytes; below this /healthz says the disk is failing
RETRY_AFTER = 300  # seconds, on the 503 page: an operator has to make room first
_SQLITE_FULL = 13  # "database or disk is full"
_PG_DISK_FULL = "53100"  # SQLSTATE disk_full


@dataclass(frozen=True, slots=True)
class Space:
    """Free and total bytes of the file system holding ``folder``."""

    folder: Path
    free: int
    total: int

    @property
    def low(self) -> bool:
        return self.free < FREE_SPACE_FLOOR


def written_folders(config: Config) -> list[Path]:
    """The folders feedsvc writes to: data_dir, the outbox, a SQLite file's folder."""
    folders = [config.data_path]
    if config.mail.backend == "outbox":
        folders.append(config.outbox_path)
    url = config.database_url
    if url.startswith("sqlite:///") and ":memory:" not in url:
        folders.append(Path(url.removeprefix("sqlite:///").split("?")[0]).parent)
    return folders


def tightest(folders: list[Path]) -> Space:
    """The least free space among the file systems holding ``folders``.

    A folder not made yet is judged by the nearest one that exists, where it will be.
    """
    spaces = []
    for folder in folders:
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        stat = os.statvfs(existing)
        spaces.append(Space(folder, stat.f_bavail * stat.f_frsize, stat.f_blocks * stat.f_frsize))
    return min(spaces, key=lambda space: space.free)


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a write refused for want of space.

    SQLite says SQLITE_FULL, PostgreSQL SQLSTATE 53100, a file write ENOSPC or
    EDQUOT; the driver's error may sit under SQLAlchemy's (``orig``) or in the
    chain of causes.
    """
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        error = pending.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if getattr(error, "sqlite_errorcode", None) == _SQLITE_FULL:
            return True
        if getattr(error, "sqlstate", None) == _PG_DISK_FULL:
            return True
        for cause in (getattr(error, "orig", None), error.__cause__, error.__context__):
            if isinstance(cause, BaseException):
                pending.append(cause)
    return False


class DiskFullPage:
    """ASGI middleware: a request whose write failed on a full disk gets ``page`` (503,
    with ``Retry-After``), and the log one line saying so, instead of a 500."""

    def __init__(self, app: ASGIApp, page: Callable[[Request], Response]) -> None:
        self.app = app
        self.page = page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started or not is_disk_full(exc):
                raise
            error = clean_line(str(getattr(exc, "orig", None) or exc))  # the driver's words
            fields = {"path": scope["path"], "error": error}
            log.error("disk full: request refused", extra={"fields": fields})
            response = self.page(Request(scope))
            response.headers["Retry-After"] = str(RETRY_AFTER)
            response.headers["Cache-Control"] = "no-store"
            await response(scope, receive, send)
