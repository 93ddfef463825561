"""Reading the news in a real browser, through a real `feedsvc serve`: the home page at a
phone's and a desktop's width, a category paged forward, a story, a feed shown as a page
by its style sheet, and axe-core on every reading page and the preferences page, in
Vietnamese and English. Requests to anything but 127.0.0.1 (publishers' thumbnails) are
refused by the browser, so nothing leaves the machine."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from feedsvc import config as config_module
from feedsvc.model import utcnow
from feedsvc.newsletter.tokens import Purpose, Tokens
from feedsvc.store import Store
from tests._browser import browser, context, look  # noqa: F401 (browser is a fixture)
from tests._net import free_port, wait_until_up
from tests.integration.corpus_site import CONFIG, load_corpus
from tests.integration.test_reading import add_stories


@pytest.fixture
def newsroom(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The corpus newsroom with 40 more stories in Xã hội, served on a free port; the
    base URL and a reader's preferences link."""
    port = free_port()
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(port=port, db=tmp_path / "feedsvc.db"), encoding="utf-8")
    config = config_module.load(path)
    store = Store.open(config.database_url)
    load_corpus(config, store)
    add_stories(config, store, 1, 40, hours=1)
    reader, _ = store.subscribers.add(
        "doc-gia@example.vn",
        categories=["xa-hoi"],
        schedule="daily",
        locale="vi",
        timezone="Asia/Ho_Chi_Minh",
        confirmed=True,
        now=utcnow(),
    )
    store.close()
    preferences = Tokens.from_config(config).link(config.site.base_url, Purpose.PREFERENCES, reader)
    server = subprocess.Popen([sys.executable, "-m", "feedsvc", "serve", "--config", str(path)])
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}", preferences
    finally:
        server.terminate()
        server.wait(timeout=20)


def local_only(ctx: Any) -> Any:
    """Refuse every request that is not to 127.0.0.1 (thumbnails are on publishers' hosts)."""
    ctx.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith("http://127.0.0.1:")
            else route.abort()
        ),
    )
    return ctx


def drop_xslt_banner(page: Any) -> None:
    """Remove the banner Chromium itself adds to every XSLT page (XSLT is deprecated in
    Chromium); it is the browser's, not ours, and fails axe's contrast rule. It comes
    a moment after the page; a browser without it is waited for no longer than that."""
    for _ in range(50):
        if page.evaluate("document.getElementsByTagName('xslt-warning-banner').length"):
            break
        page.wait_for_timeout(100)
    page.evaluate(
        "[...document.getElementsByTagName('xslt-warning-banner')].forEach(b => b.remove())"
    )


def test_a_reader_opens_the_home_page_a_category_pages_on_and_reads_a_story(
    browser: Any,  # noqa: F811
    newsroom: tuple[str, str],
    request: pytest.FixtureRequest,
) -> None:
    base, _ = newsroom
    ctx = local_only(context(browser, phone=True))
    page = ctx.new_page()
    page.goto(f"{base}/")
    page.get_by_role("heading", name="Xã hội", level=2).wait_for()
    assert page.get_by_role(
        "link", name="Tin số 40: Hà Tĩnh đón mùa lúa mới", exact=True
    ).is_visible()
    assert page.get_by_text("Nông dân xã Thạch Hà thu hoạch lúa, bản tin số 40.").is_visible()
    assert page.get_by_role("searchbox", name="Tìm tin").is_visible()
    assert page.get_by_role("button", name="Đăng ký").count() == 1
    look(page, "1-home-phone", request)

    page.get_by_role("link", name="Mọi tin mục Xã hội").click()
    page.get_by_role("heading", name="Xã hội", level=1).wait_for()
    first = page.locator(".story-link").all_inner_texts()
    assert len(first) == 30
    assert first[0] == "Tin số 40: Hà Tĩnh đón mùa lúa mới"
    look(page, "2-category-phone", request)

    page.get_by_role("link", name="Tin cũ hơn →").click()
    page.get_by_role("link", name="← Tin mới hơn").wait_for()
    second = page.locator(".story-link").all_inner_texts()
    assert second[0] == "Tin số 10: Hà Tĩnh đón mùa lúa mới"
    assert not set(first) & set(second)
    look(page, "3-category-page-2-phone", request)

    page.get_by_role("link", name="Chi tiết: Tin số 10: Hà Tĩnh đón mùa lúa mới").click()
    page.get_by_role("heading", name="Tin số 10: Hà Tĩnh đón mùa lúa mới", level=1).wait_for()
    assert page.get_by_text("Báo Hà Tĩnh").first.is_visible()
    assert page.get_by_role("link", name="Đọc bài gốc").get_attribute("href") == (
        "https://baohatinh.example.vn/them-10.html"
    )
    look(page, "4-story-phone", request)
    ctx.close()


def test_a_feed_opened_in_the_browser_is_a_page_of_its_stories(
    browser: Any,  # noqa: F811
    newsroom: tuple[str, str],
    request: pytest.FixtureRequest,
) -> None:
    base, _ = newsroom
    ctx = local_only(context(browser, phone=True))
    page = ctx.new_page()
    page.goto(f"{base}/feeds/xa-hoi.rss")
    page.get_by_role("heading", name="Đây là một nguồn tin (RSS/Atom)").wait_for()
    assert page.get_by_role("heading", name="Xã hội", level=1).is_visible()
    assert page.get_by_text("sao chép địa chỉ của trang này vào trình đọc tin").is_visible()
    assert page.get_by_text("copy the address of this page into a feed reader").is_visible()
    assert page.get_by_role(
        "link", name="Làm gì để tăng tỷ lệ bao phủ bảo hiểm y tế", exact=True
    ).is_visible()
    assert page.get_by_text(f"{base}/feeds/xa-hoi.rss").is_visible()
    assert page.evaluate("getComputedStyle(document.body).margin") == "0px"  # style.css applied
    drop_xslt_banner(page)
    look(page, "feed-rss-phone", request)
    page.goto(f"{base}/feeds/xa-hoi.atom")
    page.get_by_role(
        "link", name="Làm gì để tăng tỷ lệ bao phủ bảo hiểm y tế", exact=True
    ).wait_for()
    drop_xslt_banner(page)
    look(page, "feed-atom-phone", request)
    ctx.close()


@pytest.mark.parametrize("locale", ["vi-VN", "en-GB"])
def test_reading_pages_and_preferences_pass_axe_at_desktop_width(
    browser: Any,  # noqa: F811
    newsroom: tuple[str, str],
    request: pytest.FixtureRequest,
    locale: str,
) -> None:
    base, preferences = newsroom
    language = locale[:2]
    ctx = local_only(context(browser, phone=False, locale=locale))
    page = ctx.new_page()
    page.goto(f"{base}/")
    assert page.locator("html").get_attribute("lang") == language
    words = {"vi": "Mọi tin mục Xã hội", "en": "All stories in Xã hội"}
    look(page, f"home-{language}", request)
    page.get_by_role("link", name=words[language]).click()
    page.locator(".story-link").first.wait_for()
    look(page, f"category-{language}", request)
    details = {"vi": "Chi tiết", "en": "Details"}[language]
    page.get_by_role("link", name=f"{details}: Tin số 40: Hà Tĩnh đón mùa lúa mới").click()
    page.get_by_role("heading", level=1).wait_for()
    look(page, f"story-{language}", request)
    page.goto(f"{base}/c/khong-co")
    gone = {"vi": "Không tìm thấy trang", "en": "Page not found"}[language]
    page.get_by_role("heading", name=gone).wait_for()
    page.goto(preferences)
    title = {"vi": "Tùy chọn nhận bản tin", "en": "Newsletter preferences"}
    page.get_by_role("heading", name=title["vi"]).or_(
        page.get_by_role("heading", name=title["en"])
    ).wait_for()
    look(page, f"preferences-{language}", request)
    ctx.close()
