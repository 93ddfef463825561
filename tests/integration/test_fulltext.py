"""Full text end to end, in process: a real HTTP server on 127.0.0.1 serving feeds that
give only a lead and the articles' pages (tests/data/articles/), the real parser pool,
a real store on SQLite and PostgreSQL, the real guarded fetcher."""

from __future__ import annotations

import asyncio
import html
import json
import shutil
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from feedsvc import config as config_module
from feedsvc.config import Config
from feedsvc.ingest import _netguard
from feedsvc.ingest.poll import Poller
from feedsvc.ingest.pool import parse_pool
from feedsvc.model import PollResult, utcnow
from feedsvc.publish.regenerate import Publisher
from feedsvc.store import Store
from feedsvc.store.schema import entries
from tests.feedserver import FeedServer

ARTICLES = Path(__file__).parents[1] / "data" / "articles"
UA_PREFIX = "feedsvc/"
SELECTOR_PAGE = "/plain/articles/lua-he-thu-ngap-ung.html"
GUESSED_PAGE = "/plain/articles/cau-cua-hoi-thong-xe.html"
HUGE_PAGE = "/plain/articles/binh-luan-nong.html"
PDF_PAGE = "/plain/articles/bao-cao-kinh-te-quy-3.pdf"
INTERNAL_PAGE = "/plain/articles/noi-bo.html"
MAX_BYTES = 256 * 1024


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    executor = parse_pool()
    yield executor
    executor.shutdown()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[FeedServer]:
    """Pages and feeds on 127.0.0.1, and on 127.0.0.2 too: a refused redirect there
    would have been answered, had the guard let it through."""
    root = tmp_path / "site"
    shutil.copytree(ARTICLES, root / "articles")
    (root / "articles" / "noi-bo.html").write_bytes(
        (ARTICLES / "cau-cua-hoi-thong-xe.html").read_bytes()
    )
    (root / "articles" / "binh-luan-nong.html").write_bytes(huge_page())
    async with FeedServer(root, hosts=2) as running:
        yield running


def huge_page() -> bytes:
    """The selector page with a comment thread that takes it past ``MAX_BYTES``."""
    page = (ARTICLES / "lua-he-thu-ngap-ung.html").read_text(encoding="utf-8")
    comment = (
        '<li class="comment"><b>Bạn đọc {n}</b><p>Đề nghị tỉnh sớm có phương án hỗ trợ giống'
        " lúa cho bà con vụ sau, nhiều hộ ở Cẩm Xuyên đã mất trắng.</p></li>\n"
    )
    thread = "".join(comment.format(n=n) for n in range(2000))
    huge = page.replace('<ul class="comment-list">', f'<ul class="comment-list">{thread}')
    assert len(huge.encode()) > MAX_BYTES
    return huge.encode()


@pytest.fixture
def loopback_127_0_0_1_counts_as_public() -> Iterator[None]:
    """Let the guarded fetcher reach the test server at 127.0.0.1, and only there.

    The server can only listen on loopback, so to see a redirect to a private
    address refused, 127.0.0.1 plays the public site and 127.0.0.2 the private one.
    """
    real = _netguard.address_kind

    def kind(address: _netguard.IPAddress) -> str | None:
        return None if str(address) == "127.0.0.1" else real(address)

    _netguard._literal_kind.cache_clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_netguard, "address_kind", kind)
        yield
    _netguard._literal_kind.cache_clear()


def item(n: int, link: str, title: str, lead: str) -> str:
    return (
        f"<item><title>{title}</title><link>{html.escape(link)}</link>"
        f'<guid isPermaLink="false">bai-{n}</guid>'
        f"<description><![CDATA[<p>{lead}</p>]]></description>"
        "<pubDate>Mon, 15 Sep 2025 08:30:00 +0700</pubDate></item>"
    )


def lead_feed(*items: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        "<title>Báo Hà Tĩnh - Kinh tế</title><link>https://baohatinh.example.vn/kinh-te</link>"
        f"<description>Tin kinh tế</description>{''.join(items)}</channel></rss>"
    )


LEADS = {
    1: ("Hơn 1.200 ha lúa hè thu bị ngập úng", "Mưa lớn khiến hơn 1.200 ha lúa hè thu bị ngập."),
    2: ("Thông xe cầu Cửa Hội", "Sáng 14/9, cầu Cửa Hội chính thức thông xe."),
    3: ("Bạn đọc bàn chuyện lúa ngập", "Hàng nghìn ý kiến về hỗ trợ nông dân."),
    4: ("Báo cáo kinh tế quý III", "Toàn văn báo cáo tình hình kinh tế quý III."),
    5: ("Tài liệu nội bộ", "Một trang chỉ dành cho mạng nội bộ."),
}


def write_config(
    tmp_path: Path, db_url: str, sources: list[dict[str, Any]], **fetch: Any
) -> Config:
    settings = {"allow_private_networks": True, "timeout": "5s", "max_bytes": MAX_BYTES} | fetch
    document = {
        "site": {"title": "Bản tin thử", "base_url": "http://127.0.0.1:8080"},
        "storage": {"url": db_url},
        "fetch": settings,
        "categories": [{"id": "kinh-te", "title": "Kinh tế"}],
        "sources": [{"categories": ["kinh-te"]} | source for source in sources],
    }
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")  # YAML reads JSON
    return config_module.load(path)


async def poll(config: Config, store: Store, pool: ProcessPoolExecutor) -> dict[str, PollResult]:
    async with Poller(config, store, pool=pool) as poller:
        await asyncio.to_thread(poller.sync_sources)
        results = await poller.poll(force=True)
    return {result.source_id: result for result in results}


def rows(store: Store) -> dict[str, Any]:
    """Each stored entry's full-text columns, by guid."""
    query = sa.select(
        entries.c.guid,
        entries.c.content,
        entries.c.content_source,
        entries.c.full_text_due,
        entries.c.full_text_error,
        entries.c.full_text_at,
    )
    with store.engine.connect() as conn:
        return {row.guid: row for row in conn.execute(query)}


@pytest.fixture
def store_for(db_url: str) -> Iterator[Store]:
    store = Store.open(db_url)
    yield store
    store.close()


@pytest.fixture
async def newsroom(
    tmp_path: Path, server: FeedServer, db_url: str
) -> tuple[Config, dict[int, str]]:
    """Two sources that give leads: one with a selector (four pages, three of them bad),
    one left to trafilatura; private networks refused, as in production."""
    internal = f"http://127.0.0.2:{server.port}{INTERNAL_PAGE}"
    links = {
        1: server.url(SELECTOR_PAGE),
        2: server.url(GUESSED_PAGE),
        3: server.url(HUGE_PAGE),
        4: server.url(PDF_PAGE),
        5: server.url(f"/redirect-to?code=302&url={internal}"),
    }
    feeds = {"selector.rss": (1, 3, 4, 5), "guessed.rss": (2,)}
    for name, numbers in feeds.items():
        server.write(name, lead_feed(*(item(n, links[n], *LEADS[n]) for n in numbers)))
    config = write_config(
        tmp_path,
        db_url,
        [
            {
                "id": "baohatinh",
                "url": server.url("/feeds/selector.rss"),
                "full_text": {"selector": "div.article-content"},
            },
            {"id": "baonghean", "url": server.url("/feeds/guessed.rss"), "full_text": True},
        ],
        allow_private_networks=False,
    )
    return config, links


@pytest.mark.usefixtures("loopback_127_0_0_1_counts_as_public")
async def test_articles_stored_or_failures_recorded_and_the_poll_completes(
    newsroom: tuple[Config, dict[int, str]],
    server: FeedServer,
    store_for: Store,
    pool: ProcessPoolExecutor,
) -> None:
    config, _ = newsroom

    results = await poll(config, store_for, pool)

    selector, guessed = results["baohatinh"], results["baonghean"]
    assert (selector.status, selector.new, selector.error) == ("updated", 4, None)
    assert (selector.articles, selector.article_failures) == (1, 3)
    assert selector.warning is not None
    assert selector.warning.startswith("3 of 4 article pages not used (")
    assert (guessed.status, guessed.new, guessed.articles, guessed.article_failures) == (
        "updated",
        1,
        1,
        0,
    )
    stored = rows(store_for)
    assert {guid: row.content_source for guid, row in stored.items()} == {
        "bai-1": "article",
        "bai-2": "article",
        "bai-3": "feed",
        "bai-4": "feed",
        "bai-5": "feed",
    }
    assert not any(row.full_text_due for row in stored.values())
    assert all(row.full_text_at is not None for row in stored.values())


@pytest.mark.usefixtures("loopback_127_0_0_1_counts_as_public")
async def test_the_selected_article_replaces_the_lead_with_absolute_links(
    newsroom: tuple[Config, dict[int, str]],
    server: FeedServer,
    store_for: Store,
    pool: ProcessPoolExecutor,
) -> None:
    await poll(newsroom[0], store_for, pool)

    row = rows(store_for)["bai-1"]
    assert row.full_text_error is None
    assert row.content.startswith("<p>Theo báo cáo nhanh của Sở Nông nghiệp và Môi trường")
    assert "Ảnh: Đức Quang</figcaption>" in row.content
    assert f'src="{server.url("/uploads/2025/09/15/lua-ngap-cam-xuyen.jpg")}"' in row.content
    assert f'src="{server.url("/uploads/2025/09/15/bom-tieu-ung-thach-ha.jpg")}"' in row.content
    for around in ("Quảng cáo", "Bình luận", "Hoàng Minh", "Đọc nhiều", "<script", "<iframe"):
        assert around not in row.content


@pytest.mark.usefixtures("loopback_127_0_0_1_counts_as_public")
async def test_trafilatura_finds_the_article_where_no_selector_is_given(
    newsroom: tuple[Config, dict[int, str]], store_for: Store, pool: ProcessPoolExecutor
) -> None:
    await poll(newsroom[0], store_for, pool)

    row = rows(store_for)["bai-2"]
    assert row.full_text_error is None
    assert "<p>Cầu Cửa Hội có tổng chiều dài gần 5,2 km" in row.content
    assert "<h3>Bảo đảm an toàn giao thông sau thông xe</h3>" in row.content
    for around in ("Ý kiến bạn đọc", "Đặng Văn Lực", "Tin mới", "Cùng chuyên mục", "QUẢNG CÁO"):
        assert around not in row.content


@pytest.mark.usefixtures("loopback_127_0_0_1_counts_as_public")
async def test_a_page_that_cannot_be_used_keeps_the_lead_and_says_why(
    newsroom: tuple[Config, dict[int, str]],
    server: FeedServer,
    store_for: Store,
    pool: ProcessPoolExecutor,
) -> None:
    await poll(newsroom[0], store_for, pool)

    stored = rows(store_for)
    assert stored["bai-3"].full_text_error == (
        f"body larger than 256 KB (Content-Length {len(huge_page())}) from 127.0.0.1"
    )
    assert stored["bai-4"].full_text_error == "not an HTML page (application/pdf)"
    assert stored["bai-5"].full_text_error == (
        "refused loopback address 127.0.0.2 (fetch.allow_private_networks is false)"
    )
    for guid, n in (("bai-3", 3), ("bai-4", 4), ("bai-5", 5)):
        assert stored[guid].content == f"<p>{LEADS[n][1]}</p>"
    assert server.requests["/redirect-to"] == 1  # the public hop was fetched…
    assert server.requests[INTERNAL_PAGE] == 0  # … the private one never was


@pytest.mark.usefixtures("loopback_127_0_0_1_counts_as_public")
async def test_each_page_is_fetched_once_without_validators(
    newsroom: tuple[Config, dict[int, str]],
    server: FeedServer,
    store_for: Store,
    pool: ProcessPoolExecutor,
) -> None:
    await poll(newsroom[0], store_for, pool)
    before = rows(store_for)

    again = await poll(newsroom[0], store_for, pool)

    assert {result.status for result in again.values()} == {"not_modified"}
    assert (again["baohatinh"].articles, again["baohatinh"].article_failures) == (0, 0)
    assert rows(store_for) == before
    for page in (SELECTOR_PAGE, GUESSED_PAGE, HUGE_PAGE, PDF_PAGE):
        assert server.requests[page] == 1, page
        [headers] = server.headers_for(page)
        assert "If-None-Match" not in headers
        assert "If-Modified-Since" not in headers
        assert headers["Accept"].startswith("text/html")
        assert headers["User-Agent"].startswith(UA_PREFIX)


@pytest.mark.usefixtures("loopback_127_0_0_1_counts_as_public")
async def test_the_feeds_carry_the_article_and_the_summary_stays_the_lead(
    newsroom: tuple[Config, dict[int, str]], store_for: Store, pool: ProcessPoolExecutor
) -> None:
    config, links = newsroom
    results = await poll(config, store_for, pool)

    Publisher(config, store_for).after_poll(list(results.values()), utcnow())

    document = store_for.documents.get("kinh-te.json")
    assert document is not None
    items = {item["url"]: item for item in json.loads(document.body)["items"]}
    assert "Cầu Cửa Hội có tổng chiều dài gần 5,2 km" in items[links[2]]["content_html"]
    assert items[links[2]]["summary"] == LEADS[2][1]
    assert items[links[4]]["content_html"] == f"<p>{LEADS[4][1]}</p>"
    for name in ("kinh-te.rss", "kinh-te.atom"):  # content:encoded, Atom content
        stored = store_for.documents.get(name)
        assert stored is not None
        assert "Theo báo cáo nhanh của Sở Nông nghiệp" in stored.body.decode()


async def test_an_edit_keeps_the_article_unless_the_link_changes(
    tmp_path: Path, server: FeedServer, store_for: Store, db_url: str, pool: ProcessPoolExecutor
) -> None:
    page = server.url(GUESSED_PAGE)
    title, lead = LEADS[2]
    server.write("live.rss", lead_feed(item(2, page, title, lead)))
    source = {"id": "live", "url": server.url("/feeds/live.rss"), "full_text": True}
    config = write_config(tmp_path, db_url, [source])
    await poll(config, store_for, pool)
    article = rows(store_for)["bai-2"].content

    server.write("live.rss", lead_feed(item(2, page, f"{title} (cập nhật)", f"{lead} Mới.")))
    edited = await poll(config, store_for, pool)

    assert (edited["live"].updated, edited["live"].articles) == (1, 0)
    assert rows(store_for)["bai-2"].content == article
    assert server.requests[GUESSED_PAGE] == 1

    moved = server.url("/plain/articles/da-chuyen.html")  # a new page, not there (404)
    server.write("live.rss", lead_feed(item(2, moved, title, lead)))
    relinked = await poll(config, store_for, pool)

    assert (relinked["live"].updated, relinked["live"].article_failures) == (1, 1)
    row = rows(store_for)["bai-2"]
    assert (row.content, row.content_source) == (f"<p>{lead}</p>", "feed")
    assert row.full_text_error == "HTTP 404 Not Found from 127.0.0.1"


async def test_pages_and_feeds_together_stay_within_fetch_concurrency(
    tmp_path: Path, store_for: Store, db_url: str, pool: ProcessPoolExecutor
) -> None:
    root = tmp_path / "site"
    shutil.copytree(ARTICLES, root / "articles")
    async with FeedServer(root, hosts=3) as server:
        sources = []
        for n, base in enumerate(server.base_urls):
            page = f"{base}{GUESSED_PAGE}?delay=0.2"
            leads = [
                item(k, f"{page}&k={k}", f"Tin {n}-{k}", "Cầu Cửa Hội thông xe.") for k in range(3)
            ]
            server.write(f"s{n}.rss", lead_feed(*leads))
            sources.append({"id": f"s{n}", "url": f"{base}/feeds/s{n}.rss", "full_text": True})
        config = write_config(tmp_path, db_url, sources, concurrency=2)

        results = await poll(config, store_for, pool)

    assert [result.articles for result in results.values()] == [3, 3, 3]
    assert server.requests[GUESSED_PAGE] == 9
    assert server.most_at_once == 2
