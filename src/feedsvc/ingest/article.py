"""An article page's bytes -> the article as sanitized HTML: the pure half of full text.

It runs in the parse pool (``ingest.pool``), so it imports only what it needs:
lxml, nh3 (through ``_html``) and, on first use, trafilatura. The page is decoded
here (the ``Content-Type`` charset, else a ``<meta charset>``, else UTF-8) and
parsed once; then either the source's CSS selector picks the article (every
outermost match, in page order, through cssselect) or trafilatura guesses it.
The result goes through the same nh3 allowlist as feed content, its links
resolved against the page (its ``<base href>``, else its final URL), and is cut
at the same size as feed content.

What a page gives is a value, never an exception: ``Extracted.error`` says why
there is nothing to use, in one line an operator can act on.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import lxml.etree
import lxml.html

from feedsvc._text import shorten
from feedsvc.ingest._fields import CONTENT_LIMIT
from feedsvc.ingest._html import cut_between_tags, html_to_text, sanitize_html

__all__ = ["Extracted", "extract"]

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# A page without a Content-Type is HTML if it starts like one.
_LOOKS_LIKE_HTML = re.compile(
    rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.I | re.S
)
_META_CHARSET = re.compile(
    rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]{1,40})""", re.I
)
# Where lazy-loading pages keep the real picture while ``src`` holds a placeholder.
_LAZY_SOURCES = ("data-src", "data-original", "data-lazy-src")


@dataclass(frozen=True, slots=True)
class Extracted:
    """The article of a page (sanitized HTML), or why there is none to use."""

    content: str | None
    error: str | None = None

    @staticmethod
    def failed(error: str) -> Extracted:
        return Extracted(None, error)


def extract(
    body: bytes,
    *,
    url: str,
    content_type: str | None,
    selector: str | None,
    feed_content: str,
) -> Extracted:
    """Find the article in the page ``body`` fetched from ``url``.

    Args:
        content_type: the response's Content-Type header, if any.
        selector: the source's CSS selector; None: trafilatura decides.
        feed_content: what the feed gave; an article that is not longer (in
            text) is not worth replacing it with.
    """
    media_type, charset = _media_type(content_type)
    if not _is_html(media_type, body):
        return Extracted.failed(f"not an HTML page ({media_type or 'no Content-Type'})")
    tree = _parse(body, charset)
    if tree is None:
        return Extracted.failed("the page could not be read as HTML")
    base = _base(tree, url)
    if selector:
        fragment = _select(tree, selector)
        missing = f"the selector {selector!r} matched nothing on the page"
    else:
        fragment = _guess(tree, base)
        missing = "no article found on the page"
    if not fragment:
        return Extracted.failed(missing)
    content = sanitize_html(cut_between_tags(fragment, CONTENT_LIMIT), base).strip()
    return _worth_keeping(content, feed_content)


def _worth_keeping(content: str, feed_content: str) -> Extracted:
    """Keep the article only if it says more than the feed did."""
    chars = len(html_to_text(content))
    if not chars:
        return Extracted.failed("the article found on the page has no text")
    if chars <= len(html_to_text(feed_content)):
        return Extracted.failed(
            f"the page's article ({chars} characters) is no longer than the feed's"
        )
    return Extracted(content)


def _media_type(content_type: str | None) -> tuple[str, str | None]:
    """The media type, lower-cased, and the charset parameter, if any."""
    if not content_type:
        return "", None
    media_type, *params = content_type.split(";")
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return shorten(media_type.strip().lower(), 80), charset


def _is_html(media_type: str, body: bytes) -> bool:
    if media_type:
        return media_type in _HTML_TYPES
    return bool(_LOOKS_LIKE_HTML.match(body[:1024]))


def _decode(body: bytes, charset: str | None) -> str:
    """The page's text: the header's charset, else the page's own ``<meta>``, else UTF-8."""
    for candidate in (charset, _meta_charset(body), "utf-8"):
        if candidate and _known_codec(candidate):
            return body.decode(candidate, errors="replace")
    return body.decode("utf-8", errors="replace")


def _meta_charset(body: bytes) -> str | None:
    match = _META_CHARSET.search(body[:4096])
    return match.group(1).decode("ascii") if match else None


def _known_codec(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


def _parse(body: bytes, charset: str | None) -> Any:
    """The page as an lxml tree, from text we decoded (so no declaration inside misleads it)."""
    parser = lxml.html.HTMLParser(
        encoding="utf-8", remove_comments=True, remove_pis=True, collect_ids=False
    )
    text = _decode(body, charset).encode("utf-8", errors="replace")
    try:
        tree = lxml.html.document_fromstring(text, parser=parser)
    except (lxml.etree.ParserError, ValueError):
        return None
    return tree


def _base(tree: Any, url: str) -> str:
    """What the page's relative links are relative to: its ``<base href>``, else its URL."""
    for href in tree.xpath("//head/base/@href")[:1]:
        resolved = urljoin(url, str(href).strip())
        if resolved.startswith(("http://", "https://")):
            return resolved
    return url


def _select(tree: Any, selector: str) -> str:
    """The HTML of every outermost element ``selector`` matches, in page order."""
    matches = tree.cssselect(selector)
    chosen = set(matches)
    outermost = [e for e in matches if not any(a in chosen for a in e.iterancestors())]
    for element in outermost:
        _unhide_lazy_images(element)
    return "".join(lxml.html.tostring(e, encoding="unicode", with_tail=False) for e in outermost)


def _unhide_lazy_images(element: Any) -> None:
    """Give each lazily loaded picture its real ``src`` (trafilatura does this on its own)."""
    for image in element.iter("img"):
        src = (image.get("src") or "").strip()
        if src and not src.startswith("data:"):
            continue
        real = next((image.get(name) for name in _LAZY_SOURCES if image.get(name)), None)
        if real:
            image.set("src", real.strip())


def _guess(tree: Any, base: str) -> str:
    """trafilatura's guess at the article: text, headings, lists, tables, pictures, links;
    no comments, no metadata (which would load its date parser for nothing)."""
    import trafilatura  # ~1 s and 20 MB the first time: only pool workers that extract pay it

    found = trafilatura.extract(
        tree,
        url=base,
        output_format="html",
        include_comments=False,
        include_tables=True,
        include_images=True,
        include_links=True,
        include_formatting=True,
        with_metadata=False,
    )
    return found or ""
