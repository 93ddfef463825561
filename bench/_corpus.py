"""Benchmark feeds: many large Vietnamese RSS files built from the sample articles.

Every feed is RSS 2.0 in the style of tests/data/feeds/baohatinh-*.rss: the ten
sample articles, cycled, each with its body lengthened from the samples' own
Vietnamese paragraphs until an item is about ``item_bytes`` long, and every guid
and link unique per feed and entry (so a cold poll stores every entry). The
output is deterministic: the same arguments write the same bytes.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from html import escape
from pathlib import Path

SAMPLES = Path(__file__).parents[1] / "tests" / "data" / "feeds"
_CONTENT = "{http://purl.org/rss/1.0/modules/content/}encoded"
_CONTENT_TAGS = "<content:encoded><![CDATA[]]></content:encoded>\n"
_PARAGRAPH = re.compile(r"<(p|blockquote)>.*?</\1>", re.DOTALL)
# Dates are fixed so the bytes are too; they span the weeks before this moment.
_NEWEST = datetime(2025, 5, 20, 9, 0, tzinfo=timezone(timedelta(hours=7)))


@dataclass(frozen=True, slots=True)
class Article:
    """One sample item: the fields a generated entry is made from."""

    title: str
    slug: str
    teaser: str
    content: str
    categories: tuple[str, ...]


def load_articles(folder: Path = SAMPLES) -> list[Article]:
    """Read every item of the baohatinh-*.rss samples."""
    articles = []
    for path in sorted(folder.glob("baohatinh-*.rss")):
        for item in ET.parse(path).getroot().iter("item"):
            link = (item.findtext("link") or "").strip()
            articles.append(
                Article(
                    title=(item.findtext("title") or "").strip(),
                    slug=link.rsplit("/", 1)[-1].removesuffix(".html"),
                    teaser=(item.findtext("description") or "").strip(),
                    content=(item.findtext(_CONTENT) or "").strip(),
                    categories=tuple(c.text or "" for c in item.iter("category")),
                )
            )
    return articles


def write_feeds(folder: Path, *, feeds: int, entries: int, item_bytes: int = 3950) -> list[str]:
    """Write ``feeds`` files of ``entries`` items into ``folder``; return their names."""
    articles = load_articles()
    paragraphs = sorted({m[0] for a in articles for m in _PARAGRAPH.finditer(a.content)})
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for number in range(feeds):
        name = f"feed-{number:03d}.rss"
        items = (
            _item(articles[n % len(articles)], paragraphs, number, n, item_bytes)
            for n in range(entries)
        )
        (folder / name).write_text(_channel(number, items), encoding="utf-8")
        names.append(name)
    return names


def _channel(number: int, items: Iterable[str]) -> str:
    title = f"Báo Hà Tĩnh - Tổng hợp {number:03d}"
    head = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">\n'
        f"<channel>\n<title>{title}</title>\n"
        f"<link>https://baohatinh.example.vn/tong-hop-{number:03d}</link>\n"
        f"<description>{title}</description>\n<language>vi</language>\n<ttl>15</ttl>\n"
    )
    return head + "".join(items) + "</channel>\n</rss>\n"


def _item(article: Article, paragraphs: list[str], feed: int, entry: int, size: int) -> str:
    link = f"https://baohatinh.example.vn/{article.slug}-{feed:03d}-{entry:03d}.html"
    published = format_datetime(_NEWEST - timedelta(hours=3 * entry + feed % 3))
    categories = "".join(f"<category>{escape(c)}</category>\n" for c in article.categories)
    head = (
        f"<item>\n<title>{escape(article.title)} ({entry + 1})</title>\n<link>{link}</link>\n"
        f"<description><![CDATA[{article.teaser}]]></description>\n"
    )
    tail = (
        f'<guid isPermaLink="true">{link}</guid>\n<pubDate>{published}</pubDate>\n'
        f"{categories}</item>\n"
    )
    budget = size - len((head + tail + _CONTENT_TAGS).encode())
    content = _lengthened(article.content, paragraphs, start=feed + entry, budget=budget)
    return f"{head}<content:encoded><![CDATA[{content}]]></content:encoded>\n{tail}"


def _lengthened(content: str, paragraphs: list[str], *, start: int, budget: int) -> str:
    """``content`` followed by sample paragraphs, in turn from ``start``, up to ``budget`` bytes."""
    parts, used = [content], len(content.encode())
    n = start
    while True:
        paragraph = paragraphs[n % len(paragraphs)]
        cost = len(paragraph.encode())
        if used + cost > budget:
            return "".join(parts)
        parts.append(paragraph)
        used += cost
        n += 1
