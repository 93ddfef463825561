"""The feeds over HTTP, as a feed reader sees them: a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

import aiohttp
import feedparser
import pytest

from feedsvc.config import Config
from feedsvc.publish.regenerate import Publisher
from feedsvc.store import Store
from tests._net import free_port
from tests.conftest import NOW
from tests.integration.corpus_site import open_corpus, served


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[tuple[str, Config, Store]]:
    port = free_port()
    _, config, store = open_corpus(tmp_path, port)
    async with served(config, store):
        yield f"http://127.0.0.1:{port}", config, store
    store.close()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Accept-Encoding": "identity"}  # gzip only where a test asks for it
    async with aiohttp.ClientSession(auto_decompress=False, headers=headers) as session:
        yield session


async def test_category_feed_then_304(
    site: tuple[str, Config, Store], client: aiohttp.ClientSession
) -> None:
    base, _, _ = site
    async with client.get(f"{base}/feeds/xa-hoi.rss") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/rss+xml; charset=utf-8"
        assert response.headers["Cache-Control"] == "public, max-age=900"
        etag, modified = response.headers["ETag"], response.headers["Last-Modified"]
        body = await response.read()
    parsed = feedparser.parse(body)
    assert parsed.feed.title == "Xã hội"
    assert len(parsed.entries) == 5
    assert any("trẻ em" in entry.title for entry in parsed.entries)
    async with client.get(f"{base}/feeds/xa-hoi.rss", headers={"If-None-Match": etag}) as again:
        assert again.status == 304
        assert await again.read() == b""
    async with client.get(
        f"{base}/feeds/xa-hoi.rss", headers={"If-Modified-Since": modified}
    ) as since:
        assert since.status == 304


async def test_every_response_is_dated_once_and_the_date_moves(
    site: tuple[str, Config, Store], client: aiohttp.ClientSession
) -> None:
    """RFC 9110 wants a Date on every response; caches compute a feed's age from it."""
    base, _, _ = site
    dates = []
    for path in ("/feeds/xa-hoi.rss", "/", "/no-such-page", "/feeds/xa-hoi.rss"):
        async with client.get(f"{base}{path}") as response:
            assert len(response.headers.getall("Date")) == 1
            dates.append(parsedate_to_datetime(response.headers["Date"]))
        if path == "/":
            await asyncio.sleep(1.1)
    now = datetime.now(UTC)
    assert all(abs(now - date) < timedelta(seconds=10) for date in dates)
    assert dates[-1] > dates[0]  # refreshed without a timer


async def test_gzip_when_asked(
    site: tuple[str, Config, Store], client: aiohttp.ClientSession
) -> None:
    base, _, _ = site
    async with client.get(f"{base}/feeds/all.atom", headers={"Accept-Encoding": "gzip"}) as zipped:
        assert zipped.headers["Content-Encoding"] == "gzip"
        assert zipped.headers["Vary"] == "Accept, Accept-Encoding"
        body = gzip.decompress(await zipped.read())
    async with client.get(
        f"{base}/feeds/all.atom", headers={"Accept-Encoding": "identity"}
    ) as plain:
        assert "Content-Encoding" not in plain.headers
        assert await plain.read() == body
    assert body.startswith(b"<?xml")
    assert "Báo Hà Tĩnh".encode() in body


async def test_head_has_headers_and_no_body(
    site: tuple[str, Config, Store], client: aiohttp.ClientSession
) -> None:
    base, _, _ = site
    async with client.head(f"{base}/feeds/chinh-tri.json") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/feed+json; charset=utf-8"
        assert int(response.headers["Content-Length"]) > 100
        assert await response.read() == b""
    async with client.get(f"{base}/feeds/chinh-tri.json") as response:
        feed = json.loads(await response.read())
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["feed_url"] == f"{base}/feeds/chinh-tri.json"


async def test_unknown_category_is_a_helpful_404(
    site: tuple[str, Config, Store], client: aiohttp.ClientSession
) -> None:
    base, _, _ = site
    for path in ("/feeds/the-thao.rss", "/feeds/xa-hoi.xml", "/nowhere"):
        async with client.get(base + path, headers={"Accept-Language": "vi"}) as response:
            assert response.status == 404
            page = (await response.read()).decode()
            assert "Không tìm thấy trang" in page
            assert f"{base}/feeds/xa-hoi.rss" in page  # points at what does exist


async def test_keyword_category_collects_from_every_source(
    site: tuple[str, Config, Store], client: aiohttp.ClientSession
) -> None:
    base, _, _ = site
    async with client.get(f"{base}/feeds/tre-em.atom") as response:
        parsed = feedparser.parse(await response.read())
    assert parsed.entries
    assert all("trẻ em" in (e.title + e.summary).lower() for e in parsed.entries)


async def test_index_autodiscovery_and_language(
    site: tuple[str, Config, Store], client: aiohttp.ClientSession
) -> None:
    base, config, _ = site
    async with client.get(f"{base}/", headers={"Accept-Language": "en-US,en;q=0.9,vi;q=0.5"}) as en:
        english = (await en.read()).decode()
        assert en.headers["Content-Language"] == "en"
    assert "All categories" in english
    async with client.get(f"{base}/") as vi:
        page = (await vi.read()).decode()
    assert "Tất cả chuyên mục" in page
    assert '<html lang="vi">' in page
    alternates = re.findall(
        r'<link rel="alternate" type="([^"]+)" title="[^"]*" href="([^"]+)"', page
    )
    expected = {
        f"{base}/feeds/{c}.{f}"
        for c in ("all", "xa-hoi", "chinh-tri", "tre-em")
        for f in ("rss", "atom", "json")
    }
    assert {href for _, href in alternates} == expected
    for href in expected:
        async with client.get(href) as response:
            assert response.status == 200, href


async def test_opml_lists_every_category_feed(
    site: tuple[str, Config, Store], client: aiohttp.ClientSession
) -> None:
    base, _, _ = site
    async with client.get(f"{base}/feeds.opml") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/x-opml")
        text = (await response.read()).decode()
    for category in ("xa-hoi", "chinh-tri", "tre-em"):
        assert f'xmlUrl="{base}/feeds/{category}.rss"' in text
    assert "Xã hội" in text


async def test_document_changes_only_when_content_does(
    site: tuple[str, Config, Store], client: aiohttp.ClientSession
) -> None:
    base, config, store = site
    async with client.get(f"{base}/feeds/xa-hoi.rss") as response:
        etag = response.headers["ETag"]
    Publisher(config, store).publish_all(NOW + timedelta(hours=1))  # nothing new: same bytes
    async with client.get(f"{base}/feeds/xa-hoi.rss", headers={"If-None-Match": etag}) as again:
        assert again.status == 304
    assert format_datetime(NOW, usegmt=True) == again.headers["Last-Modified"]


async def test_healthz(site: tuple[str, Config, Store], client: aiohttp.ClientSession) -> None:
    base, _, _ = site
    async with client.get(f"{base}/healthz") as response:
        assert response.status == 200
        health = await response.json()
    assert (health["status"], health["database"], health["scheduler"]) == (
        "ok",
        "ok",
        "not running",
    )


async def test_a_story_from_two_sources_appears_once_in_all(
    site: tuple[str, Config, Store], client: aiohttp.ClientSession
) -> None:
    base, _, store = site
    async with client.get(f"{base}/feeds/all.json") as response:
        items = json.loads(await response.read())["items"]
    links = [item["url"] for item in items]
    assert len(links) == len(set(links))
    assert store.entries.count() > len(items)  # the shared articles were stored per source


# --- response headers that protect the pages ------------------------------------------

TEMPLATES = Path(__file__).parents[2] / "src" / "feedsvc" / "templates" / "web"


def csp(header: str) -> dict[str, list[str]]:
    """A Content-Security-Policy header as {directive: [sources]}."""
    directives = [part.split() for part in header.split(";") if part.strip()]
    return {name: sources for name, *sources in directives}


@pytest.mark.parametrize(
    "path", ["/", "/nowhere", "/feeds/the-thao.rss", "/digests/", "/unsubscribe/x.y", "/confirm/x"]
)
async def test_pages_cannot_be_framed_run_scripts_or_be_sniffed(
    site: tuple[str, Config, Store], client: aiohttp.ClientSession, path: str
) -> None:
    """A framed one-button unsubscribe page is a clickjacking target; nothing here needs JS."""
    base, _, _ = site
    async with client.get(base + path) as response:
        assert response.content_type == "text/html"
        headers = response.headers
    policy = csp(headers["Content-Security-Policy"])
    assert policy["default-src"] == ["'none'"]  # so no script-src: no script at all
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'", base]  # the forms post to site.base_url
    assert policy["style-src"][:2] == ["'self'", base]  # /static/style.css
    assert "'unsafe-inline'" not in policy["style-src"]
    assert policy["base-uri"] == ["'none'"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"  # token URLs never leave the site


async def test_feeds_send_what_they_did_plus_nosniff(
    site: tuple[str, Config, Store], client: aiohttp.ClientSession
) -> None:
    base, _, _ = site
    for path in ("/feeds/xa-hoi.rss", "/feeds/all.json", "/feeds.opml"):
        async with client.get(base + path) as response:
            assert response.status == 200
            names = {name.lower() for name in response.headers}
            assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert names == {
            "cache-control",
            "content-length",
            "content-type",
            "date",
            "etag",
            "last-modified",
            "vary",
            "x-content-type-options",
        }, path
    for path in ("/healthz", "/static/style.css", "/metrics"):
        async with client.get(base + path) as response:
            assert response.headers["X-Content-Type-Options"] == "nosniff", path
            assert "Content-Security-Policy" not in response.headers


def test_templates_use_nothing_the_policy_forbids() -> None:
    """No script, no style="" attribute, no on…= handler: the policy would block each."""
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert "<script" not in text, template.name
        assert not re.search(r"\sstyle\s*=", text), template.name
        assert not re.search(r"\son[a-z]+\s*=", text), template.name
