"""Response headers that keep the pages out of frames and browsers from guessing types.

The pages need no JavaScript, so the Content-Security-Policy allows none: a page
loads the site's style sheet (and ``site.logo_url``), posts its forms to the site,
and nothing else; no other site may frame it (the one-button unsubscribe page
would be a clickjacking target). Inline ``<style>`` elements (the operator's
status page has one, and a newsroom's own templates may add some) are allowed
by the hash of each, taken from the page as rendered, so the policy needs no
``'unsafe-inline'`` and an edited template is covered the moment it is used.
The story pages (``web/reading.py``) also allow images from any ``https:`` origin:
a story's thumbnail and the pictures in its text are the publisher's, and a
story without them would be a poorer page; an ``http:`` picture is not shown.
``site.base_url`` is allowed beside ``'self'`` because the templates link and
post to it, and the page may be reached by another name (a proxy, a test's port).

======================  =============================================================
response                added (a header the handler set itself is kept)
======================  =============================================================
every response          ``X-Content-Type-Options: nosniff``
an HTML page            ``Content-Security-Policy`` (``Site.render`` sets it with the
                        page's style hashes; others get it without),
                        ``X-Frame-Options: DENY``, ``Referrer-Policy: same-origin``
                        (token links never leave the site; the status page sends
                        ``no-referrer``)
======================  =============================================================
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_INLINE_STYLE = re.compile(r"<style(?:\s[^>]*)?>(.*?)</style>", re.DOTALL | re.IGNORECASE)


def inline_styles(html: str) -> list[str]:
    """CSP hash sources for each inline ``<style>`` element of ``html``."""
    found = {
        "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"
        for text in _INLINE_STYLE.findall(html)
    }
    return sorted(found)


def content_security_policy(
    base_url: str,
    logo_url: str | None = None,
    style_hashes: list[str] | None = None,
    *,
    remote_images: bool = False,
) -> str:
    """The policy of an HTML page of the site at ``base_url``; ``remote_images``: the page
    shows publishers' pictures, from any https origin (never http: no mixed content)."""
    site = f"'self' {_origin(base_url)}"
    images = f"{site} {_origin(logo_url)}" if logo_url else site
    if remote_images:
        images += " https:"
    return "; ".join(
        [
            "default-src 'none'",
            " ".join([f"style-src {site}", *(style_hashes or [])]),
            f"img-src {images}",
            f"form-action {site}",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class SecurityHeaders:
    """ASGI middleware adding the headers above; ``policy`` gives the CSP of a page
    that did not set one (config.yaml may be reloaded with another ``site.base_url``)."""

    def __init__(self, app: ASGIApp, policy: Callable[[], str]) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", ()))  # ours to extend
                add_security_headers(MutableHeaders(scope=message), self.policy)
            await send(message)

        await self.app(scope, receive, send_guarded)


def add_security_headers(headers: MutableHeaders, policy: Callable[[], str]) -> None:
    """Add the headers of the table above that ``headers`` lacks (``policy``: the CSP).

    ``SecurityHeaders`` does this to every response; a response made ahead of
    time (``web/feeds.py``'s cached documents) has it done once, when made.
    """
    headers.setdefault("X-Content-Type-Options", "nosniff")
    if headers.get("content-type", "").startswith("text/html"):
        headers.setdefault("Content-Security-Policy", policy())
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
