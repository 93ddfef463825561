"""Serving stored feed documents: validators, 304s, gzip, HEAD. No rendering per request.

A feed reader polls every few minutes; almost every request should end in a
304 or a copy of bytes already in the database (compressed ahead of time).
`document_response` answers one request from a `Document`; ``web/cache.py``
keeps the answers of each served document ready in memory, made by the same
function, so both ways send the same headers.
"""

from __future__ import annotations

from email.utils import format_datetime, parsedate_to_datetime

from starlette.requests import Request
from starlette.responses import Response

from feedsvc.store.documents import Document


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
        head=request.method == "HEAD",
    )


def build_response(
    document: Document, max_age: int, *, not_modified: bool, gzip: bool, head: bool
) -> Response:
    """The 304 (``not_modified``) or the 200, with its gzip copy if ``gzip``, of ``document``."""
    headers = {
        "ETag": document.etag,
        "Last-Modified": format_datetime(document.last_modified, usegmt=True),
        "Cache-Control": f"public, max-age={max_age}",
        "Vary": "Accept-Encoding",
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
    return Response(body, media_type=document.content_type, headers=headers)


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
