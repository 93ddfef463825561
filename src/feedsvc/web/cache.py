"""Stored documents answered from memory, fresh across processes within a second.

A category feed is read by every feed reader every few minutes, and nearly
every answer is a 304 or the same gzip bytes. Reading the row and building the
response through Starlette for each request cost about ten times what uvicorn
itself spends on it, so `DocumentCache` keeps each served document with its
answers made ahead of time (by ``feeds.build_response`` and
``headers.add_security_headers``: the same headers the handler sends), and
`CachedDocuments`, a pure ASGI middleware in front of the app, sends them with
no routing, no thread and no database.

Freshness. Another process (``feedsvc run`` beside ``feedsvc serve``, several
services on one PostgreSQL) may store a new version at any time, so a copy is
used only for ``FRESH_FOR`` seconds after it was checked against the database;
the next request after that goes to the handler, which checks the stored ETag
(one indexed column, in the thread pool; concurrent requests share one check)
and reads the whole row only if it changed. A document this process stores
itself is seen at once: ``DocumentStore.writes`` moves, and every copy made
before the move is stale.

====================================  ==========================================
who stored the new version            served from
====================================  ==========================================
this process (its publisher)          the next request
another process, on the same database at most ``FRESH_FOR`` seconds after its
                                      commit (plus the check's own time)
====================================  ==========================================
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import format_datetime

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Receive, Scope, Send

from feedsvc.store.documents import Document, DocumentStore
from feedsvc.web.feeds import accepts_gzip, build_response, for_browser, not_modified, styled

FRESH_FOR = 1.0  # seconds a copy is used before it is checked against the database again
_GZIP_MEMO_SIZE = 256  # distinct Accept-Encoding values remembered

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    headers: Headers  # complete, as sent (uvicorn or DateHeader adds Date)
    body: bytes


class _Copy:
    """One document and its answers: 304, and 200 plain or gzip, each as its own type or,
    if the document has a style sheet, as XML for a browser."""

    __slots__ = ("checked", "document", "etag", "last_modified", "ok", "same", "styled", "writes")

    def __init__(self, document: Document, answer: Callable[..., _Answer]) -> None:
        self.document = document
        self.etag = document.etag.encode("latin-1")
        self.last_modified = format_datetime(document.last_modified, usegmt=True).encode("latin-1")
        self.styled = styled(document)
        self.same = answer(document, not_modified=True, gzip=False, browser=False)
        self.ok = {
            (gzip, browser): answer(document, not_modified=False, gzip=gzip, browser=browser)
            for gzip in (False, True)
            for browser in ((False, True) if self.styled else (False,))
        }
        self.checked = 0.0  # time.monotonic() of the check against the database
        self.writes = -1  # DocumentStore.writes at that check

    def answer(self, headers: Iterable[tuple[bytes, bytes]], gzip: dict[bytes, bool]) -> _Answer:
        """The answer to a request with these (lower-cased) headers."""
        if_none_match = if_modified_since = accept_encoding = accept = None
        for name, value in headers:  # the first of each, as Starlette's Headers.get
            if name == b"if-none-match":
                if_none_match = value if if_none_match is None else if_none_match
            elif name == b"if-modified-since":
                if_modified_since = value if if_modified_since is None else if_modified_since
            elif name == b"accept-encoding":
                accept_encoding = value if accept_encoding is None else accept_encoding
            elif name == b"accept":
                accept = value if accept is None else accept
        if if_none_match == self.etag or (
            if_none_match is None and if_modified_since == self.last_modified
        ):
            return self.same  # the common conditional request, without parsing
        if (if_none_match is not None or if_modified_since) and not_modified(
            self.document,
            None if if_none_match is None else if_none_match.decode("latin-1"),
            None if if_modified_since is None else if_modified_since.decode("latin-1"),
        ):
            return self.same
        zipped = accept_encoding is not None and _takes_gzip(accept_encoding, gzip)
        browser = (
            self.styled
            and accept is not None
            and for_browser(self.document, accept.decode("latin-1"))
        )
        return self.ok[zipped, browser]


def _takes_gzip(accept_encoding: bytes, memo: dict[bytes, bool]) -> bool:
    """``feeds.accepts_gzip``, remembered per distinct value (readers send a few)."""
    zipped = memo.get(accept_encoding)
    if zipped is None:
        if len(memo) >= _GZIP_MEMO_SIZE:
            memo.clear()
        zipped = memo[accept_encoding] = accepts_gzip(accept_encoding.decode("latin-1"))
    return zipped


class DocumentCache:
    """Copies of the documents served, by request path (see the module docstring)."""

    def __init__(self, documents: DocumentStore, clock: Callable[[], float] = time.monotonic):
        self._documents = documents
        self._clock = clock
        self._copies: dict[str, _Copy] = {}
        self._checks: dict[str, asyncio.Future[_Copy | None]] = {}
        self._gzip: dict[bytes, bool] = {}
        self._generation = 0
        self._max_age = 0
        self._secure: Callable[[MutableHeaders], None] = lambda headers: None

    def reset(self, max_age: int, secure: Callable[[MutableHeaders], None]) -> None:
        """Forget every copy; answers made from now on have this Cache-Control max-age and
        the headers ``secure`` adds (config.yaml was loaded or reloaded)."""
        self._max_age, self._secure = max_age, secure
        self._copies.clear()
        self._generation += 1

    def fresh(self, path: str) -> _Copy | None:
        """The copy served at ``path`` if it may be used without asking the database."""
        copy = self._copies.get(path)
        if (
            copy is None
            or copy.writes != self._documents.writes
            or self._clock() - copy.checked >= FRESH_FOR
        ):
            return None
        return copy

    def answer(self, path: str, headers: Iterable[tuple[bytes, bytes]]) -> _Answer | None:
        """The answer from the fresh copy at ``path`` to a request with ``headers``, if any."""
        copy = self.fresh(path)
        return None if copy is None else copy.answer(headers, self._gzip)

    async def load(self, path: str, name: str) -> Document | None:
        """The current document ``name`` (served at ``path``), checked if its copy is old."""
        copy = self.fresh(path)
        if copy is not None:
            return copy.document
        check = self._checks.get(path)
        if check is None:  # one check at a time per path: the others wait for it
            check = asyncio.ensure_future(self._check(path, name))
            self._checks[path] = check
            check.add_done_callback(lambda _: self._checks.pop(path, None))
        copy = await asyncio.shield(check)
        return None if copy is None else copy.document

    async def _check(self, path: str, name: str) -> _Copy | None:
        generation, writes, started = self._generation, self._documents.writes, self._clock()
        known = self._copies.get(path)
        document = await run_in_threadpool(self._current, name, known)
        if document is None:
            self._copies.pop(path, None)
            return None
        copy = known if known is not None and known.document is document else None
        copy = copy or _Copy(document, self._answer)
        copy.checked, copy.writes = started, writes  # as of the check's start: never later
        if generation == self._generation:  # not reset meanwhile (max_age may differ)
            self._copies[path] = copy
        return copy

    def _current(self, name: str, known: _Copy | None) -> Document | None:
        """The stored document; ``known``'s if its ETag is still the stored one."""
        if known is not None and self._documents.etag(name) == known.document.etag:
            return known.document
        return self._documents.get(name)

    def _answer(
        self, document: Document, *, not_modified: bool, gzip: bool, browser: bool
    ) -> _Answer:
        response = build_response(
            document, self._max_age, not_modified=not_modified, gzip=gzip, browser=browser
        )
        headers = MutableHeaders(raw=list(response.raw_headers))
        self._secure(headers)
        return _Answer(response.status_code, headers.raw, bytes(response.body))


class CachedDocuments:
    """ASGI middleware: a GET or HEAD of a path whose copy is fresh is answered from it;
    everything else goes on to the app."""

    def __init__(self, app: ASGIApp, cache: DocumentCache) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            answer = (
                None
                if scope.get("root_path")
                else self.cache.answer(scope["path"], scope["headers"])
            )
            if answer is not None:
                start = {"type": "http.response.start", "status": answer.status}
                await send({**start, "headers": answer.headers})
                body = b"" if scope["method"] == "HEAD" else answer.body
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
