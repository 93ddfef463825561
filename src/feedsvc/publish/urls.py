"""The site's public addresses, built in one place: feeds, category pages, story pages.

Every address is under ``site.base_url`` (which may carry a path prefix), so the
pages, the feeds' self links and the emails all agree on where things live.
"""

from __future__ import annotations

from urllib.parse import quote

# The style sheet a browser applies to an RSS or Atom document. Relative to the
# document (every feed is served at ``{base}/feeds/…``), so it has the feed's origin
# whatever name the site is reached by (XSLT must be same-origin) and keeps a path
# prefix of ``site.base_url``.
FEED_STYLESHEET = "../static/feed.xsl"


def feed_url(base_url: str, category_id: str, fmt: str) -> str:
    """``/feeds/{category}.{fmt}``: a category's feed (also ``all``)."""
    return f"{base_url.rstrip('/')}/feeds/{category_id}.{fmt}"


def category_url(
    base_url: str, category_id: str, *, before: str | None = None, after: str | None = None
) -> str:
    """``/c/{category}``: a category's stories, newest first; a cursor names a later page."""
    url = f"{base_url.rstrip('/')}/c/{quote(category_id)}"
    if before:
        return f"{url}?before={quote(before)}"
    if after:
        return f"{url}?after={quote(after)}"
    return url


def story_url(base_url: str, entry_id: int) -> str:
    """``/s/{entry id}``: one story's page."""
    return f"{base_url.rstrip('/')}/s/{entry_id}"
