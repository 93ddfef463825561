"""``/feeds.opml``: every category feed in one file a feed reader can import."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from feedsvc import opml
from feedsvc.config import Category
from feedsvc.publish.items import Format


def render_opml(
    title: str,
    base_url: str,
    categories: Sequence[Category],
    formats: Sequence[Format],
    now: datetime,
) -> bytes:
    """An OPML 2.0 list of the category feeds, one outline per category.

    Each category is listed once, in the first of ``formats`` (the operator's
    preferred one): a reader importing the file subscribes to every outline,
    and the same category in three formats would show every story three times.

    Args:
        title: the OPML document's title (the site's).
        base_url: ``site.base_url``; feeds live under ``{base_url}/feeds/``.
        categories: the configured categories, in config order.
        formats: ``feeds.formats``; with none, the list is empty.
        now: the OPML ``dateCreated``.
    """
    if not formats:
        return opml.write(title, [], now)
    root = base_url.rstrip("/")
    outlines = [
        opml.Outline(
            url=f"{root}/feeds/{category.id}.{formats[0]}",
            title=category.title,
            html_url=base_url,
        )
        for category in categories
    ]
    return opml.write(title, outlines, now)
