"""The search page in a real browser, through a real `feedsvc serve`: a reader types
"tre em" without tones, sees toned results with the match marked, and follows one.
At a phone's width in Vietnamese and a desktop's in English, axe-core on each page."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from feedsvc import config as config_module
from feedsvc.store import Store
from tests._browser import browser, context, look  # noqa: F401 (browser is a fixture)
from tests._net import free_port, wait_until_up
from tests.integration.corpus_site import CONFIG, load_corpus

ORIGINALS = "https://baohatinh.example.vn/**"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """The corpus newsroom (two Báo Hà Tĩnh feeds, stored and published), served."""
    port = free_port()
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(port=port, db=tmp_path / "feedsvc.db"), encoding="utf-8")
    config = config_module.load(path)
    store = Store.open(config.database_url)
    load_corpus(config, store)
    store.close()
    server = subprocess.Popen([sys.executable, "-m", "feedsvc", "serve", "--config", str(path)])
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/healthz")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)


@pytest.mark.parametrize(("phone", "locale"), [(True, "vi-VN"), (False, "en-US")])
def test_a_reader_searches_without_tones_and_follows_a_result(
    served: str,
    browser: Any,  # noqa: F811 (the fixture)
    request: pytest.FixtureRequest,
    phone: bool,
    locale: str,
) -> None:
    size = "phone" if phone else "desktop"
    page = context(browser, phone=phone, locale=locale).new_page()
    # The originals are the publisher's pages: no test may reach them, so the browser
    # is answered here, and only the address it asked for is checked.
    page.route(
        ORIGINALS,
        lambda route: route.fulfill(
            body="<title>Bài gốc</title>original", content_type="text/html; charset=utf-8"
        ),
    )
    page.goto(f"{served}/search")
    assert page.locator("html").get_attribute("lang") == locale[:2]
    look(page, f"search-empty-{size}", request)
    page.get_by_role("searchbox").fill("tre em")
    page.get_by_role("button", name="Tìm" if locale == "vi-VN" else "Search").click()
    page.locator(".hit").first.wait_for()
    assert "q=tre+em" in page.url
    marks = page.locator(".hit mark").all_inner_texts()
    assert {m.casefold() for m in marks} >= {"trẻ", "em"}  # toned text, marked
    first = page.locator(".hit-title").first
    assert "trẻ em" in (first.inner_text() + page.locator(".hit").first.inner_text()).casefold()
    feeds = page.locator('link[rel="alternate"][href*="/feeds/search."]')
    assert feeds.count() == 3  # autodiscovery of the search as RSS, Atom, JSON Feed
    look(page, f"search-results-{size}", request)
    href = first.get_attribute("href")
    assert href is not None
    assert href.startswith("https://baohatinh.example.vn/")
    first.click()
    page.wait_for_url(href)
    assert page.title() == "Bài gốc"
    page.context.close()


def test_a_hostile_query_shows_an_empty_answer(
    served: str,
    browser: Any,  # noqa: F811 (the fixture)
) -> None:
    page = context(browser, phone=True).new_page()
    page.goto(f"{served}/search?q=%22%20NEAR(%20*%20%27%3B%20DROP%20TABLE")
    assert page.locator("h1").inner_text() == "Tìm"
    assert page.locator("main").is_visible()
    page.context.close()
