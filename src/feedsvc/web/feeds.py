"""Serving stored feed documents: validators, 304s, gzip, HEAD. No rendering per request.

A feed reader polls every few minutes; almost every request should end in a
304 or a copy of bytes already in the database (compressed ahead of time).
`document_response` answers one request from a `Document`; ``web/cache.py``
keeps the answers of each served document ready in memory, made by the same
function, so both ways send the same headers.

A person who opens an RSS or Atom feed in a browser should see a page, which the
document's style sheet (``static/feed.xsl``) makes of it. Chromium shows
``application/rss+xml`` as plain text and applies XSLT only to a generic XML type,
so a request that asks for HTML and does not name the feed's own type (a browser
navigating; feed readers name theirs or ask for anything) gets the same bytes as
``application/xml``. The response varies on ``Accept``; the bytes, hence the
ETag, are the same either way.
"""

from __future__ import annotations

from email.utils import format_datetime, parsedate_to_datetime

from starlette.requests import Request
from starlette.responses import Response

from feedsvc.store.documents import Document

_STYLED = b"<?xml-stylesheet "  # the document names a style sheet (publish.feeds)
_HEAD = 200  # bytes: the processing instruction follows the XML declaration
_BROWSABLE = "application/xml; charset=utf-8"  # a type Chromium applies XSLT to


def document_response(request: Request, document: Document, max_age: int) -> Response:
    """The response for ``document``: 304 when the client's copy is current, else the bytes."""
    headers = request.headers
    return build_response(
        document,
        max_age,
        not_modified=not_modified(
            document, headers.get("if-none-match"), headers.get("if-modified-since")
        ),
        gzip=accepts_gzip(headers.get("accept-encoding", "")),
        browser=for_browser(document, headers.get("accept", "")),
        head=request.method == "HEAD",
    )


def build_response(
    document: Document,
    max_age: int,
    *,
    not_modified: bool,
    gzip: bool,
    browser: bool = False,
    head: bool = False,
) -> Response:
    """The 304 (``not_modified``) or the 200 of ``document``: its gzip copy if ``gzip``,
    typed for a browser's style sheet if ``browser``, without the body if ``head``."""
    headers = {
        "ETag": document.etag,
        "Last-Modified": format_datetime(document.last_modified, usegmt=True),
        "Cache-Control": f"public, max-age={max_age}",
        "Vary": "Accept, Accept-Encoding",
    }
    if not_modified:
        return Response(status_code=304, headers=headers)
    body = document.body
    if gzip:
        body = document.body_gzip
        headers["Content-Encoding"] = "gzip"
    headers["Content-Length"] = str(len(body))
    if head:
        body = b""
    media_type = _BROWSABLE if browser else document.content_type
    return Response(body, media_type=media_type, headers=headers)


def for_browser(document: Document, accept: str) -> bool:
    """Whether ``document`` goes to a browser as generic XML (see the module docstring)."""
    own = document.content_type.partition(";")[0]
    accept = accept.lower()
    return styled(document) and "text/html" in accept and own not in accept


def styled(document: Document) -> bool:
    """Whether ``document`` names a style sheet, so a browser may be sent it as XML."""
    return _STYLED in document.body[:_HEAD]


def not_modified(
    document: Document, if_none_match: str | None, if_modified_since: str | None
) -> bool:
    """RFC 9110 13.2.2: If-None-Match decides when present; else If-Modified-Since."""
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or document.etag in tags
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        return since.tzinfo is not None and document.last_modified <= since
    return False


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding value takes gzip (named, and not with q=0)."""
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() == "gzip":
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False
