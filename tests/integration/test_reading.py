"""Reading the news on the site, through a real uvicorn on 127.0.0.1: the home page's
stories, a category's pages with a cursor that stays put while news arrives, one story,
404s in the visitor's language, and feeds a browser shows as a page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from html import unescape
from pathlib import Path

import aiohttp
import pytest

from feedsvc.config import Config
from feedsvc.model import ParsedEntry, ParsedFeed
from feedsvc.publish.regenerate import Publisher
from feedsvc.store import Store
from tests._net import free_port
from tests.conftest import NOW
from tests.integration.corpus_site import open_corpus, served
from tests.integration.test_stories_store import NOW as STORIES_NOW
from tests.integration.test_stories_store import store_items

VI = {"Accept-Language": "vi-VN,vi;q=0.9"}
EN = {"Accept-Language": "en-GB,en;q=0.9"}
ARTICLE = "https://baohatinh.example.vn/lam-gi-de-tang-ty-le-bao-phu-bao-hiem-y-te.html"
STYLESHEET = b'<?xml-stylesheet type="text/xsl" href="../static/feed.xsl"?>'
_STORY_TITLE = re.compile(r'class="story-link" href="[^"]*">([^<]+)</a>')
_NEXT = re.compile(r'<a rel="next" href="([^"]+)"')
_PREV = re.compile(r'<a rel="prev" href="([^"]+)"')


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[tuple[str, Config, Store]]:
    port = free_port()
    _, config, store = open_corpus(tmp_path, port)
    async with served(config, store):
        yield f"http://127.0.0.1:{port}", config, store
    store.close()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def add_stories(config: Config, store: Store, first: int, count: int, hours: int) -> None:
    """``count`` stories of source xa-hoi numbered from ``first``, published an hour apart
    from ``hours`` after NOW on (a later number is newer), filed by the publisher."""
    [source] = [s for s in store.sources.list() if s.id == "xa-hoi"]
    entries = tuple(
        ParsedEntry(
            identity=f"them-{n}",
            title=f"Tin số {n}: Hà Tĩnh đón mùa lúa mới",
            link=f"https://baohatinh.example.vn/them-{n}.html",
            summary=f"Nông dân xã Thạch Hà thu hoạch lúa, bản tin số {n}.",
            published=NOW + timedelta(hours=hours + n - first),
            content_hash=f"them-{n}",
        )
        for n in range(first, first + count)
    )
    feed = ParsedFeed("Báo Hà Tĩnh", None, entries)
    stored = store.entries.apply(source, feed, {"title": "Báo Hà Tĩnh"}, NOW)  # as a poll does
    Publisher(config, store).file(list(stored.new_ids))


async def get(client: aiohttp.ClientSession, url: str, **headers: str) -> tuple[int, str]:
    async with client.get(url, headers=headers or VI) as response:
        return response.status, await response.text()


def titles(page: str) -> list[str]:
    return [unescape(t) for t in _STORY_TITLE.findall(page)]


async def test_home_shows_each_categorys_newest_stories_then_the_form_and_feeds(
    site: tuple[str, Config, Store], client: aiohttp.ClientSession
) -> None:
    base, _, _ = site
    async with client.get(f"{base}/", headers=VI) as response:
        assert response.status == 200
        policy = response.headers["Content-Security-Policy"]
        page = await response.text()
    assert '<html lang="vi">' in page
    for section in ("Xã hội", "Chính trị", "Trẻ em"):
        assert f'<a href="{base}/c/' in page
        assert f">{section}</a></h2>" in page
    shown = titles(page)
    assert "Làm gì để tăng tỷ lệ bao phủ bảo hiểm y tế" in shown
    assert (
        'href="https://baohatinh.example.vn/lam-gi-de-tang-ty-le-bao-phu-bao-hiem-y-te.html"'
        in page
    )
    assert "Tỷ lệ người dân tham gia bảo hiểm y tế được coi là" in page  # the summary's start
    assert 'src="https://baohatinh.example.vn/img/lam-gi-de-tang-ty-le.jpg"' in page
    assert "img-src 'self'" in policy
    assert " https:" in policy
    assert "script-src" not in policy
    assert "default-src 'none'" in policy
    # Time in Vietnamese, in the site's zone (Hà Nội: 01:00 UTC is 08:00).
    assert re.search(r"<time datetime=\"2025-05-12T01:00:00\+00:00\">[^<]*08:00", page)
    # Everything the index showed before: the form (same field names), feeds, autodiscovery.
    for field in ('name="email"', 'name="category"', 'name="schedule"', 'name="csrf_token"'):
        assert field in page
    autodiscovery = '<link rel="alternate" type="application/rss+xml" title="Xã hội (RSS)"'
    assert f'{autodiscovery} href="{base}/feeds/xa-hoi.rss">' in page
    assert f'href="{base}/feeds.opml"' in page
    assert f'action="{base}/search"' in page
    assert 'name="q"' in page
    assert page.index("story-card") < page.index('id="subscribe"') < page.index('class="feeds"')
    _, english = await get(client, f"{base}/", **EN)
    assert '<html lang="en">' in english
    assert "All stories in Xã hội" in english


async def test_category_pages_forward_and_back_keep_their_stories_while_news_arrives(
    site: tuple[str, Config, Store], client: aiohttp.ClientSession
) -> None:
    base, config, store = site
    add_stories(config, store, 1, 70, hours=1)  # 70 + the corpus's 5, all newer than those
    status, first = await get(client, f"{base}/c/xa-hoi")
    assert status == 200
    page1 = titles(first)
    assert len(page1) == 30
    assert page1[0].startswith("Tin số 70:")
    assert page1[-1].startswith("Tin số 41:")
    assert not _PREV.search(first)
    next_url = unescape(_NEXT.search(first).group(1))  # type: ignore[union-attr]
    assert "offset" not in next_url
    assert "?before=" in next_url
    _, second = await get(client, next_url)
    page2 = titles(second)
    assert page2[0].startswith("Tin số 40:")
    assert len(page2) == 30

    add_stories(config, store, 100, 5, hours=200)  # breaking news while the reader pages on
    _, again = await get(client, next_url)
    assert titles(again) == page2  # the same link shows the same stories
    _, third = await get(client, unescape(_NEXT.search(again).group(1)))  # type: ignore[union-attr]
    page3 = titles(third)
    assert len(page3) == 15
    assert not _NEXT.search(third)
    assert set(page1) | set(page2) | set(page3) == {*page1, *page2, *page3}
    assert len({*page1, *page2, *page3}) == 75  # nothing twice, nothing skipped

    _, back2 = await get(client, unescape(_PREV.search(third).group(1)))  # type: ignore[union-attr]
    assert titles(back2) == page2
    _, back1 = await get(client, unescape(_PREV.search(back2).group(1)))  # type: ignore[union-attr]
    assert titles(back1) == page1  # the page the reader read, not shifted by the new five
    _, newest = await get(client, unescape(_PREV.search(back1).group(1)))  # type: ignore[union-attr]
    assert titles(newest)[0].startswith("Tin số 104:")
    assert not _PREV.search(newest)
    assert len(titles(newest)) == 30


async def test_all_lists_every_category_and_a_bad_cursor_is_a_400_page(
    site: tuple[str, Config, Store], client: aiohttp.ClientSession
) -> None:
    base, _, store = site
    status, everything = await get(client, f"{base}/c/all")
    assert status == 200
    assert "<h1>Tất cả chuyên mục</h1>" in everything
    shown = titles(everything)
    assert any("BHYT" in t for t in shown)
    assert any("Ngàn Phố" in t for t in shown)
    assert len(shown) == sum(store.categories.count_backlog())  # both corpus feeds, whole
    huge = "MS45OTk5OTk5OTk5OTk5OTk5OTk5OTk"  # "1.99999999999999999999": past BIGINT
    hostile = ("garbage", "%00", "'; DROP TABLE entries; --", "A" * 5000, "LTE.LTE", "MTIz", huge)
    for cursor in hostile:
        status, page = await get(client, f"{base}/c/xa-hoi?before={cursor}")
        assert status == 400, cursor
        assert "Địa chỉ trang này không hợp lệ" in page
        assert f'href="{base}/c/xa-hoi"' in page
    status, page = await get(client, f"{base}/c/xa-hoi?after=%FF%FE", **EN)
    assert status == 400
    assert "This page address is not valid" in page


async def test_a_story_page_shows_its_text_source_dates_categories_and_original(
    site: tuple[str, Config, Store], client: aiohttp.ClientSession
) -> None:
    base, _, store = site
    _, home = await get(client, f"{base}/")
    story = re.search(rf'href="({base}/s/\d+)" aria-label="Chi tiết: Làm gì', home)
    assert story is not None
    status, page = await get(client, story.group(1))
    assert status == 200
    assert "<h1>Làm gì để tăng tỷ lệ bao phủ bảo hiểm y tế</h1>" in page
    assert "<blockquote>“Trẻ em như búp trên cành." in page  # the stored (sanitized) HTML
    assert "Đăng lúc" in page
    assert "08:00" in page
    assert f'<a href="{base}/c/xa-hoi">Xã hội</a>' in page
    assert f'href="{ARTICLE}">Đọc bài gốc' in page
    assert "<script" not in page
    [child] = store.reading.older("tre-em", None, 1)  # filed by keyword, beside its source's
    _, page = await get(client, f"{base}/s/{child.id}")
    assert f'<a href="{base}/c/tre-em">Trẻ em</a>' in page
    assert re.search(rf'<a href="{base}/c/(xa-hoi|chinh-tri)">', page)


async def test_hostile_markup_in_a_story_never_runs(
    site: tuple[str, Config, Store], client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    base, config, store = site
    [source] = [s for s in store.sources.list() if s.id == "xa-hoi"]
    hostile = ParsedEntry(
        identity="hostile",
        title='<script>alert(1)</script> Tin "lạ"',
        link="javascript:alert(1)",
        summary="<img src=x onerror=alert(1)>",
        image="http://tracker.example/pixel.gif",
        published=NOW + timedelta(days=30),
        content_hash="hostile",
    )
    stored = store.entries.apply(source, ParsedFeed("B", None, (hostile,)), {}, NOW)
    Publisher(config, store).file(list(stored.new_ids))
    [entry_id] = stored.new_ids
    for url in (f"{base}/", f"{base}/c/xa-hoi", f"{base}/s/{entry_id}"):
        status, page = await get(client, url)
        assert status == 200, url
        assert "<script>alert" not in page
        assert "javascript:" not in page
        assert "onerror=alert" not in page.replace("&lt;img src=x onerror=alert(1)&gt;", "")
        assert "tracker.example" not in page  # an http image is not shown
        assert "&lt;script&gt;alert(1)&lt;/script&gt; Tin &#34;lạ&#34;" in page


async def test_unknown_category_or_story_is_404_in_the_visitors_language(
    site: tuple[str, Config, Store], client: aiohttp.ClientSession
) -> None:
    base, _, _ = site
    for path in ("/c/khong-co", "/s/987654", "/s/abc", "/s/" + "9" * 40, "/s/-1", "/s/١٢"):
        status, page = await get(client, f"{base}{path}")
        assert status == 404, path
        assert '<html lang="vi">' in page
        assert "Không tìm thấy trang" in page
        status, page = await get(client, f"{base}{path}", **EN)
        assert status == 404, path
        assert '<html lang="en">' in page
        assert "Page not found" in page


async def test_a_browser_gets_a_feed_as_xml_with_its_style_sheet_and_a_reader_as_rss(
    site: tuple[str, Config, Store], client: aiohttp.ClientSession
) -> None:
    base, _, _ = site
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    for fmt, own in (("rss", "application/rss+xml"), ("atom", "application/atom+xml")):
        async with client.get(f"{base}/feeds/xa-hoi.{fmt}", headers={"Accept": browser}) as r:
            assert r.headers["Content-Type"] == "application/xml; charset=utf-8"
            assert r.headers["Vary"] == "Accept, Accept-Encoding"
            shown = await r.read()
            etag = r.headers["ETag"]
        assert (
            shown.split(b"\n")[1] == b'<?xml-stylesheet type="text/xsl" href="../static/feed.xsl"?>'
        )
        async with client.get(f"{base}/feeds/xa-hoi.{fmt}", headers={"Accept": own}) as r:
            assert r.headers["Content-Type"] == f"{own}; charset=utf-8"
            assert await r.read() == shown
            assert r.headers["ETag"] == etag
        async with client.get(f"{base}/feeds/xa-hoi.{fmt}") as r:  # no Accept: newsboat, curl
            assert r.headers["Content-Type"] == f"{own}; charset=utf-8"
    async with client.get(f"{base}/feeds/xa-hoi.json", headers={"Accept": browser}) as r:
        assert r.headers["Content-Type"].startswith("application/feed+json")
    async with client.get(f"{base}/static/feed.xsl") as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "text/xsl; charset=utf-8"
        assert "Đây là một nguồn tin" in await r.text()


def test_pages_follow_date_then_id_on_both_backends(store: Store) -> None:
    """Ties on the date (a feed gives many stories one minute) and microseconds are kept
    apart by the id: every story once, in order, forward and back, on SQLite and PostgreSQL."""
    from feedsvc import reading

    store.sources.sync([("xa-hoi", "https://baohatinh.vn/rss/xa-hoi.rss")], NOW)
    [source] = store.sources.list()
    same = NOW + timedelta(microseconds=123_456)
    entries = tuple(
        ParsedEntry(
            identity=f"tin-{n}",
            title=f"Tin {n}: Đà Nẵng",
            published=same if n % 3 else None,  # no date: first seen (NOW) is its date
            content_hash=str(n),
        )
        for n in range(25)
    )
    stored = store.entries.apply(source, ParsedFeed("Báo", None, entries), {}, NOW)
    store.categories.assign({entry_id: ["xa-hoi"] for entry_id in stored.new_ids})
    pages = [reading.category_page(store, "xa-hoi", size=7)]
    while pages[-1].older:
        pages.append(reading.category_page(store, "xa-hoi", before=pages[-1].older, size=7))
    shown = [card for page in pages for card in page.cards]
    assert [len(page.cards) for page in pages] == [7, 7, 7, 4]
    assert len({card.id for card in shown}) == 25
    assert [(c.date, c.id) for c in shown] == sorted(((c.date, c.id) for c in shown), reverse=True)
    assert shown[0].date == same  # microseconds survive the store and the cursor
    back = reading.category_page(store, "xa-hoi", after=pages[2].newer, size=7)
    assert back.cards == pages[1].cards
    assert reading.category_page(store, "xa-hoi", after=pages[1].newer, size=7) == pages[0]
    everything = reading.category_page(store, reading.ALL, size=30)
    assert len(everything.cards) == 25
    assert everything.older is None
    assert everything.newer is None
    story = reading.story(store, shown[0].id)
    assert story is not None
    assert story.story.category_ids == ("xa-hoi",)
    assert reading.story(store, 10**12) is None


async def test_a_story_page_lists_its_series_other_outlets_and_related_stories(
    site: tuple[str, Config, Store], client: aiohttp.ClientSession
) -> None:
    base, _, store = site
    keys = store_items(store)  # the labelled set (tests/data/stories), news of its day
    store.stories.detect_pending(STORIES_NOW)
    ids = {key: entry_id for entry_id, key in keys.items()}
    status, page = await get(client, f"{base}/s/{ids['s1-bai2']}")
    assert status == 200
    assert "Cùng loạt bài" in page
    for part in ("s1-bai1", "s1-bai3"):
        assert f'href="{base}/s/{ids[part]}"' in page
    assert 'aria-current="page"' in page  # this part, not a link to itself
    status, page = await get(client, f"{base}/s/{ids['c1-bht']}")
    assert "Cũng đưa tin" in page
    for other in ("c1-vnp", "c1-tt", "c1-vne"):
        assert f'href="{base}/s/{ids[other]}"' in page
    status, page = await get(client, f"{base}/s/{ids['c1-bht']}", **{"Accept-Language": "en"})
    assert "Also reported by" in page
