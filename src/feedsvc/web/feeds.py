"""Serving stored feed documents: validators, 304s, gzip, HEAD. No rendering per request.

A feed reader polls every few minutes; almost every request should end in a
304 or a copy of bytes already in the database (compressed ahead of time).

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
    headers = {
        "ETag": document.etag,
        "Last-Modified": format_datetime(document.last_modified, usegmt=True),
        "Cache-Control": f"public, max-age={max_age}",
        "Vary": "Accept, Accept-Encoding",
    }
    if _not_modified(request, document):
        return Response(status_code=304, headers=headers)
    body = document.body
    if _accepts_gzip(request):
        body = document.body_gzip
        headers["Content-Encoding"] = "gzip"
    headers["Content-Length"] = str(len(body))
    if request.method == "HEAD":
        body = b""
    return Response(body, media_type=_media_type(request, document), headers=headers)


def _media_type(request: Request, document: Document) -> str:
    own = document.content_type.partition(";")[0]
    accept = request.headers.get("accept", "").lower()
    styled = _STYLED in document.body[:_HEAD]
    if styled and "text/html" in accept and own not in accept:
        return _BROWSABLE
    return document.content_type


def _not_modified(request: Request, document: Document) -> bool:
    """RFC 9110 13.2.2: If-None-Match decides when present; else If-Modified-Since."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or document.etag in tags
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        return since.tzinfo is not None and document.last_modified <= since
    return False


def _accepts_gzip(request: Request) -> bool:
    for part in request.headers.get("accept-encoding", "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() == "gzip":
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False
