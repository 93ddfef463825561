"""RSS feeds of Vietnamese articles that compress like real ones.

`_corpus` lengthens the ten sample articles with their own paragraphs, cycled:
fine for parsing, but a feed of 50 such items gzips about 30x, where news
prose gzips 3-5x, and a published feed's gzip cost and size on the wire would
be far from real. Here each item is a sample article (its real title, teaser,
first paragraphs and categories) lengthened with paragraphs drawn word by word,
at random but seeded, from the samples' own Vietnamese vocabulary: about 3x
under gzip. The output is deterministic: the same arguments give the same bytes.
"""

from __future__ import annotations

import html
import random
import re
from datetime import datetime, timedelta
from email.utils import format_datetime
from functools import cache

from bench._corpus import Article, load_articles

CONTENT_BYTES = 3300  # of an item's body: about 4 KB an item in all, as in `_corpus`
_WORD = re.compile(r"\w+")
_TAG = re.compile(r"<[^>]+>")


def rss(source: str, title: str, *, entries: int, newest: datetime, teaser_chars: int = 0) -> bytes:
    """A feed of ``entries`` items from ``source``, one every 20 minutes back from ``newest``,
    each teaser lengthened with drawn sentences to at least ``teaser_chars``."""
    rng = random.Random(source)
    articles = load_articles()
    items = "".join(
        _item(
            source,
            articles[n % len(articles)],
            n,
            newest - timedelta(minutes=20 * n),
            rng,
            teaser_chars,
        )
        for n in range(entries)
    )
    head = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">\n'
        f"<channel>\n<title>Báo Hà Tĩnh - {html.escape(title)}</title>\n"
        f"<link>https://baohatinh.example.vn/{source}</link>\n"
        f"<description>{html.escape(title)}</description>\n<language>vi</language>\n"
    )
    return (head + items + "</channel>\n</rss>\n").encode()


def _item(
    source: str,
    article: Article,
    n: int,
    published: datetime,
    rng: random.Random,
    teaser_chars: int,
) -> str:
    link = f"https://baohatinh.example.vn/{source}/{article.slug}-{n:03d}.html"
    content = article.content
    while len(content.encode()) < CONTENT_BYTES:
        content += _paragraph(rng)
    teaser = article.teaser
    while len(teaser) < teaser_chars:
        teaser += " " + _sentence(rng)
    categories = "".join(f"<category>{html.escape(c)}</category>\n" for c in article.categories)
    return (
        f"<item>\n<title>{html.escape(article.title)} ({n + 1})</title>\n<link>{link}</link>\n"
        f"<description><![CDATA[{teaser}]]></description>\n"
        f"<content:encoded><![CDATA[{content}]]></content:encoded>\n"
        f'<guid isPermaLink="true">{link}</guid>\n'
        f"<pubDate>{format_datetime(published)}</pubDate>\n{categories}</item>\n"
    )


def _paragraph(rng: random.Random) -> str:
    return "<p>" + " ".join(_sentence(rng) for _ in range(rng.randint(3, 5))) + "</p>"


def _sentence(rng: random.Random) -> str:
    words = _vocabulary()
    sentence = [rng.choice(words) for _ in range(rng.randint(12, 28))]
    return sentence[0].capitalize() + " " + " ".join(sentence[1:]) + "."


@cache
def _vocabulary() -> tuple[str, ...]:
    """Every word of the samples' bodies, repeats kept: drawing from it keeps their frequencies."""
    text = " ".join(html.unescape(_TAG.sub(" ", a.content)) for a in load_articles())
    return tuple(_WORD.findall(text))
