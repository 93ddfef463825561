"""Feeds assembled from cached entry fragments are the very bytes of a full render.

Property-style: seeded random entry sets (hostile text, CDATA ends, control
characters, NFD, enclosures, equal dates, edits, feeds with and without a hub)
rendered both ways, with an empty cache, a partly warm one and one holding
stale revisions.
"""

from __future__ import annotations

import dataclasses
import random
import unicodedata
from datetime import timedelta
from typing import Any

import pytest

from feedsvc.config import Category, Site
from feedsvc.model import Enclosure, Entry, Fragment
from feedsvc.publish.feeds import FeedInfo, render_all
from feedsvc.publish.fragments import build, context_key, render_cached
from feedsvc.publish.items import Format
from tests.conftest import NOW

FORMATS: tuple[Format, ...] = ("rss", "atom", "json")
SITE = Site(title="Báo Hà Tĩnh — Bản tin", base_url="https://bantin.example.vn")
FEEDS = [
    FeedInfo.for_category(SITE, Category(id="tre-em", title="Trẻ em"), hub="https://hub.example/"),
    FeedInfo.for_all(SITE),
    FeedInfo.for_all(Site(title="News", base_url="http://127.0.0.1:8080", language="en")),
]
TEXTS = [
    "Tăng cường bảo vệ trẻ em trong tình hình mới",
    unicodedata.normalize("NFD", "Hà Tĩnh: mưa lớn, lũ quét ở Hương Khê"),
    "Tin <script>alert(1)</script> nóng & \"nổi\" 'bật'",
    "]]> kết thúc CDATA ]]>]]> giữa chừng",
    "ký tự\x00 lạ\x0b\ufffe\ud800 và\r\n xuống dòng\u2028 \u2029",
    "",
    "   ",
    "emoji 👩‍👩‍👧 và \u200b khoảng trắng",
]
HTML = [
    "<p>Sáng 19/6, Sở <b>LĐTB&amp;XH</b> tỉnh tổ chức hội nghị.</p>",
    '<p onclick="x()">a</p><script>alert(1)</script>]]><b>',
    "<img src='https://baohatinh.example.vn/anh.jpg'>&nbsp;&#160;",
    "",
]
LINKS = [
    "https://baohatinh.example.vn/bai-{n}.html",
    "https://baohatinh.example.vn/tin tức/bài {n}.html?utm_source=x&a=<b>",
    "javascript:alert({n})",
    None,
]


def random_entry(rng: random.Random, n: int) -> Entry:
    link = rng.choice(LINKS)
    link = link.format(n=n) if link else None
    permalink = rng.random() < 0.5
    published = NOW - timedelta(minutes=rng.choice([0, 20 * n, 20 * (n // 3), 5000]))
    revision = rng.choice([0, 0, 1, 3])
    enclosures = tuple(
        Enclosure(f"https://cdn.example.vn/{n}-{k}.mp3", rng.choice(["audio/mpeg", "", "x"]), size)
        for k, size in enumerate(rng.sample([None, 0, 1234, 99], rng.randint(0, 3)))
    )
    return Entry(
        id=n,
        source_id=rng.choice(["baohatinh-xa-hoi", "vnexpress"]),
        identity=f"https://baohatinh.example.vn/bai-{n}.html",
        title=rng.choice(TEXTS),
        first_seen=NOW - timedelta(hours=n),
        link=link,
        guid=(link if permalink else rng.choice([None, f"urn:uuid:{n}"])),
        guid_is_permalink=permalink and link is not None,
        summary=rng.choice(TEXTS),
        content=rng.choice(HTML),
        author=rng.choice([None, "Phóng viên Hà Tĩnh", "pv@baohatinh.vn", "a\x00b"]),
        categories=tuple(rng.sample(["Xã hội", "Trẻ em", " ", "Xã hội\x00"], rng.randint(0, 3))),
        enclosures=enclosures,
        image=rng.choice([None, "https://cdn.example.vn/anh.jpg", "data:image/png;base64,AA"]),
        published=rng.choice([published, published, None]),
        updated=rng.choice([None, published + timedelta(minutes=7)]),
        changed=NOW - timedelta(minutes=n) if revision else None,
        revision=revision,
    )


def random_entries(seed: int) -> list[Entry]:
    rng = random.Random(seed)
    return [random_entry(rng, n) for n in range(1, rng.randint(0, 30) + 1)]


def by_key(fragments: list[Fragment]) -> dict[int, Fragment]:
    return {f.entry_id: f for f in fragments}


@pytest.mark.parametrize("seed", range(40))
def test_cached_render_gives_the_bytes_of_a_full_render(seed: int) -> None:
    entries = random_entries(seed)
    feed = FEEDS[seed % len(FEEDS)]
    expected = render_all(FORMATS, feed, entries, NOW)
    cold, built = render_cached(FORMATS, feed, entries, NOW, {})
    assert cold == expected
    assert [(f.entry_id, set(f.bodies)) for f in built] == [(e.id, set(FORMATS)) for e in entries]
    warm, rebuilt = render_cached(FORMATS, feed, entries, NOW, by_key(built))
    assert warm == expected
    assert rebuilt == []


@pytest.mark.parametrize("seed", range(20))
def test_partly_warm_and_stale_caches_give_the_same_bytes(seed: int) -> None:
    rng = random.Random(seed)
    entries = random_entries(1000 + seed)
    feed = FEEDS[seed % len(FEEDS)]
    # Cached earlier: some entries, some of them at an older revision with other text.
    earlier = [
        dataclasses.replace(e, revision=e.revision - 1, title="bản cũ") if e.revision else e
        for e in rng.sample(entries, len(entries) // 2)
    ]
    cache = by_key(build(FORMATS, feed, earlier))
    documents, built = render_cached(FORMATS, feed, entries, NOW, cache)
    assert documents == render_all(FORMATS, feed, entries, NOW)
    current = {(e.id, e.revision) for e in earlier}
    assert {f.entry_id for f in built} == {
        e.id for e in entries if (e.id, e.revision) not in current
    }


def test_one_changed_entry_is_the_only_one_rebuilt() -> None:
    entries = random_entries(7)
    feed = FEEDS[0]
    _, built = render_cached(FORMATS, feed, entries, NOW, {})
    edited = dataclasses.replace(
        entries[3], title="Tiêu đề đã sửa", revision=entries[3].revision + 1
    )
    changed = [*entries[:3], edited, *entries[4:]]
    documents, rebuilt = render_cached(FORMATS, feed, changed, NOW, by_key(built))
    assert documents == render_all(FORMATS, feed, changed, NOW)
    assert [f.entry_id for f in rebuilt] == [edited.id]


def test_one_format_alone_is_the_same_too() -> None:
    entries = random_entries(3)
    for fmt in FORMATS:
        documents, _ = render_cached((fmt,), FEEDS[1], entries, NOW, {})
        assert documents == render_all((fmt,), FEEDS[1], entries, NOW)


def test_a_format_missing_from_the_cache_is_rendered() -> None:
    entries = random_entries(4)
    rss_only = by_key(build(("rss",), FEEDS[1], entries))
    documents, built = render_cached(FORMATS, FEEDS[1], entries, NOW, rss_only)
    assert documents == render_all(FORMATS, FEEDS[1], entries, NOW)
    assert len(built) == len(entries)


def feed_with(**changes: Any) -> FeedInfo:
    return dataclasses.replace(FEEDS[1], **changes)


def test_what_an_entry_shows_of_its_feed_is_in_the_key() -> None:
    base = context_key(FEEDS[1].entry_context)
    assert context_key(feed_with(title="Khác", id="khac", hub="https://hub/").entry_context) == base
    assert context_key(feed_with(tag_authority="other.example").entry_context) != base
    assert context_key(feed_with(language="en").entry_context) != base
