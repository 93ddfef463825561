"""Search over HTTP, through a real uvicorn on 127.0.0.1: the page, the feeds, hostile input."""

from __future__ import annotations

import gzip
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import aiohttp
import feedparser
import pytest

from feedsvc.config import Config
from feedsvc.model import ParsedEntry, ParsedFeed
from feedsvc.store import Store
from tests._net import free_port
from tests.conftest import NOW
from tests.integration.corpus_site import open_corpus, served
from tests.integration.test_feed_validation import check_json_item, check_rss_item, run_jing

Site = tuple[str, Config, Store]
HOSTILE = [
    '"',
    "*",
    "NEAR(",
    "x" * 10_240,
    "'; DROP TABLE entries; --",
    "<script>alert(1)</script>",
]


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    port = free_port()
    _, config, store = open_corpus(tmp_path, port)
    async with served(config, store):
        yield f"http://127.0.0.1:{port}", config, store
    store.close()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Accept-Encoding": "identity"}
    async with aiohttp.ClientSession(auto_decompress=False, headers=headers) as session:
        yield session


async def get(client: aiohttp.ClientSession, url: str, **headers: str) -> tuple[int, str]:
    async with client.get(url, headers=headers) as response:
        return response.status, await response.text()


async def test_the_page_finds_toned_text_from_an_untoned_query(
    site: Site, client: aiohttp.ClientSession
) -> None:
    base, _, _ = site
    status, page = await get(client, f"{base}/search?q=tre+em")
    assert status == 200
    assert '<html lang="vi">' in page
    assert "Kết quả cho" in page
    assert "<mark>trẻ</mark> <mark>em</mark>" in page or "<mark>Trẻ</mark> <mark>em</mark>" in page
    hits = re.findall(r'<a class="hit-title" href="([^"]+)"', page)
    assert hits
    assert all(h.startswith("https://baohatinh.example.vn/") for h in hits)  # the originals
    assert 'value="tre em"' in page  # the form keeps what was typed
    for fmt in ("rss", "atom", "json"):  # autodiscovery of the search as a feed
        assert f'href="{base}/feeds/search.{fmt}?q=tre%20em"' in page


async def test_the_page_speaks_english_when_asked(
    site: Site, client: aiohttp.ClientSession
) -> None:
    base, _, _ = site
    status, page = await get(client, f"{base}/search?q=DA+NANG", **{"Accept-Language": "en"})
    assert status == 200
    assert '<html lang="en">' in page
    assert "Results for" in page


async def test_a_category_narrows_and_an_unknown_one_is_404(
    site: Site, client: aiohttp.ClientSession
) -> None:
    base, _, _ = site
    _, everywhere = await get(client, f"{base}/search?q=tinh")
    _, inside = await get(client, f"{base}/search?q=tinh&category=xa-hoi")
    count = len(re.findall('class="hit"', inside))
    assert 0 < count < len(re.findall('class="hit"', everywhere))
    assert '<option value="xa-hoi" selected>' in inside
    status, page = await get(client, f"{base}/search?q=tinh&category=khong-co")
    assert status == 404
    assert "Không tìm thấy trang" in page


@pytest.mark.parametrize("typed", ["", *HOSTILE])
async def test_hostile_queries_get_a_clear_empty_answer(
    site: Site, client: aiohttp.ClientSession, typed: str
) -> None:
    base, _, _ = site
    status, page = await get(client, f"{base}/search?q={quote(typed)}")
    assert status == 200
    assert "<script>alert" not in page
    for fmt in ("rss", "atom", "json"):
        async with client.get(f"{base}/feeds/search.{fmt}?q={quote(typed)}") as response:
            assert response.status == 200, (fmt, typed)
            body = await response.read()
        assert b"<script>alert" not in body
        if fmt == "json":
            json.loads(body)
        else:
            ET.fromstring(body)


async def test_search_rss_is_valid_with_its_query_in_the_self_link(
    site: Site, client: aiohttp.ClientSession
) -> None:
    base, _, _ = site
    async with client.get(f"{base}/feeds/search.rss?q=tr%E1%BA%BB+em") as response:  # "trẻ em"
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/rss+xml; charset=utf-8"
        body = await response.read()
    channel = ET.fromstring(body).find("channel")
    assert channel is not None
    self_link = channel.find("{http://www.w3.org/2005/Atom}link[@rel='self']")
    assert self_link is not None
    assert self_link.get("href") == f"{base}/feeds/search.rss?q=tr%E1%BA%BB%20em"
    assert "trẻ em" in (channel.findtext("title") or "")
    items = channel.findall("item")
    assert items
    guids = [check_rss_item(item) for item in items]
    assert len(set(guids)) == len(guids)
    parsed = feedparser.parse(body)
    assert not parsed.bozo
    assert all("trẻ em" in (e.title + e.get("summary", "")).lower() for e in parsed.entries)


async def test_search_atom_passes_the_schema_and_json_the_spec(
    site: Site, client: aiohttp.ClientSession, tmp_path: Path
) -> None:
    base, _, _ = site
    async with client.get(f"{base}/feeds/search.atom?q=%22ha+tinh%22&category=xa-hoi") as r:
        atom = await r.read()
    result = run_jing(atom, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    async with client.get(f"{base}/feeds/search.json?q=ha+tinh") as r:
        document = json.loads(await r.read())
    assert document["feed_url"] == f"{base}/feeds/search.json?q=ha%20tinh"
    assert document["home_page_url"] == f"{base}/search?q=ha%20tinh"
    assert document["items"]
    for item in document["items"]:
        check_json_item(item)


async def test_search_feed_validators_304_and_gzip(
    site: Site, client: aiohttp.ClientSession
) -> None:
    base, _, _ = site
    url = f"{base}/feeds/search.rss?q=nha"
    async with client.get(url) as response:
        etag, modified = response.headers["ETag"], response.headers["Last-Modified"]
        body = await response.read()
    async with client.get(url, headers={"If-None-Match": etag}) as again:
        assert again.status == 304
        assert await again.read() == b""
    async with client.get(url, headers={"If-Modified-Since": modified}) as since:
        assert since.status == 304
    async with client.get(url, headers={"Accept-Encoding": "gzip"}) as zipped:
        assert zipped.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(await zipped.read()) == body


async def test_a_new_matching_entry_changes_the_feed_even_from_another_process(
    site: Site, client: aiohttp.ClientSession
) -> None:
    """The cache is checked against the database: another process's entry shows at once."""
    base, config, _ = site
    url = f"{base}/feeds/search.rss?q=ho+ngheo"
    async with client.get(url) as response:
        etag = response.headers["ETag"]
        first = feedparser.parse(await response.read())
    async with client.get(url) as response:
        assert response.headers["ETag"] == etag  # nothing new: the same document
    other = Store.open(config.database_url)  # another process's connection
    [source] = [s for s in other.sources.list() if s.id == "xa-hoi"]
    entry = ParsedEntry(
        identity="moi",
        title="Hộ nghèo ở Kỳ Anh có nhà mới",
        link="https://baohatinh.example.vn/moi.html",
        published=NOW + timedelta(hours=1),
        content_hash="moi",
    )
    feed = ParsedFeed("Báo Hà Tĩnh", None, (entry,))
    other.entries.apply(source, feed, {}, NOW + timedelta(hours=1))
    other.close()
    async with client.get(url, headers={"If-None-Match": etag}) as response:
        assert response.status == 200
        assert response.headers["ETag"] != etag
        second = feedparser.parse(await response.read())
    assert second.entries[0].title == "Hộ nghèo ở Kỳ Anh có nhà mới"
    assert len(second.entries) == len(first.entries) + 1


async def test_an_unknown_feed_format_is_404(site: Site, client: aiohttp.ClientSession) -> None:
    base, _, _ = site
    status, _ = await get(client, f"{base}/feeds/search.xml?q=tinh")
    assert status == 404
    status, _ = await get(client, f"{base}/feeds/xa-hoi.rss")  # the category feeds still work
    assert status == 200
