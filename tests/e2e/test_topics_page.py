"""Following topics in a real browser, through a real `feedsvc serve`: the preferences page
in Vietnamese and English, at a phone's and a desktop's width, with axe-core on each
page; topics added, shown again one a line, and removed, with no JavaScript."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from feedsvc import config as config_module
from feedsvc.config import Config
from feedsvc.model import utcnow
from feedsvc.newsletter.tokens import Purpose, Tokens
from feedsvc.store import Store
from tests._browser import SCREENSHOTS, browser, context, look  # noqa: F401 (a fixture)
from tests._net import free_port, wait_until_up

LABELS = {"vi-VN": "Chủ đề theo dõi (không bắt buộc)", "en-GB": "Topics to follow (optional)"}
SAVE = {"vi-VN": "Lưu thay đổi", "en-GB": "Save changes"}
SAVED = {"vi-VN": "Đã lưu tùy chọn của bạn.", "en-GB": "Your preferences are saved."}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Config]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""\
site:
  title: "Báo Hà Tĩnh — Bản tin"
  base_url: "{base}"
http:
  port: {port}
sources:
  - id: xa-hoi
    url: "https://baohatinh.vn/rss/xa-hoi.rss"
    categories: [xa-hoi]
categories:
  - id: xa-hoi
    title: "Xã hội"
  - id: the-thao
    title: "Thể thao"
newsletter:
  from: "Bản tin Hà Tĩnh <bantin@example.vn>"
""",
        encoding="utf-8",
    )
    config = config_module.load(path)
    store = Store.open(config.database_url)
    store.subscribers.add(
        "theo.doi@example.vn",
        categories=["xa-hoi"],
        schedule="daily",
        locale="vi",
        timezone="Asia/Ho_Chi_Minh",
        confirmed=True,
        now=utcnow() - timedelta(days=1),
    )
    store.close()
    env = {k: v for k, v in os.environ.items() if k != "FEEDSVC_SECRET_KEY"}
    command = [sys.executable, "-m", "feedsvc", "serve", "--config", str(path)]
    server = subprocess.Popen(command, env=env)
    try:
        wait_until_up(f"{base}/healthz")
        yield base, config
    finally:
        server.terminate()
        server.wait(timeout=20)


def screenshot(request: pytest.FixtureRequest, name: str) -> Path:
    folder = SCREENSHOTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.png"


def stored_topics(config: Config) -> tuple[str, ...]:
    store = Store.open(config.database_url)
    try:
        reader = store.subscribers.by_email("theo.doi@example.vn")
    finally:
        store.close()
    assert reader is not None
    return reader.topics


def preferences_url(base: str, config: Config) -> str:
    store = Store.open(config.database_url)
    try:
        reader = store.subscribers.by_email("theo.doi@example.vn")
    finally:
        store.close()
    assert reader is not None
    return Tokens.from_config(config).link(base, Purpose.PREFERENCES, reader)


@pytest.mark.parametrize("locale", ["vi-VN", "en-GB"])
def test_topics_on_the_preferences_page_in_a_browser(
    browser: Any,  # noqa: F811 (the fixture)
    served: tuple[str, Config],
    locale: str,
    request: pytest.FixtureRequest,
) -> None:
    base, config = served
    url = preferences_url(base, config)
    for phone in (True, False):
        size = "phone" if phone else "desktop"
        page = context(browser, phone=phone, locale=locale).new_page()
        page.goto(url)
        assert page.locator("html").get_attribute("lang") == locale[:2]
        field = page.get_by_label(LABELS[locale])
        assert field.input_value() == ""
        look(page, f"preferences-{size}", request)

        field.fill("đà nẵng\nBão số 3\nDA NANG")  # the third is the first, without tones
        page.get_by_role("button", name=SAVE[locale]).click()
        page.get_by_role("status").filter(has_text=SAVED[locale]).wait_for()
        assert page.get_by_label(LABELS[locale]).input_value() == "đà nẵng\nBão số 3"
        assert stored_topics(config) == ("đà nẵng", "Bão số 3")
        look(page, f"preferences-saved-{size}", request)

        page.get_by_label(LABELS[locale]).fill("\n".join(f"chủ đề {n}" for n in range(11)))
        page.get_by_role("button", name=SAVE[locale]).click()
        alert = page.get_by_role("alert")
        alert.wait_for()
        assert "10" in alert.inner_text()
        assert page.get_by_label(LABELS[locale]).get_attribute("aria-invalid") == "true"
        look(page, f"preferences-error-{size}", request)
        assert stored_topics(config) == ("đà nẵng", "Bão số 3")  # nothing changed

        page.get_by_label(LABELS[locale]).fill("")  # removing every topic
        page.get_by_role("button", name=SAVE[locale]).click()
        page.get_by_role("status").filter(has_text=SAVED[locale]).wait_for()
        assert stored_topics(config) == ()
        page.context.close()


def test_the_sign_up_form_has_the_topics_field(
    browser: Any,  # noqa: F811 (the fixture)
    served: tuple[str, Config],
    request: pytest.FixtureRequest,
) -> None:
    base, _ = served
    for locale in LABELS:
        page = context(browser, locale=locale).new_page()
        page.goto(f"{base}/")
        field = page.get_by_label(LABELS[locale])
        field.scroll_into_view_if_needed()
        assert field.is_visible()
        # A screenshot only: axe on "/" belongs to its own test (tests/e2e/test_browser.py).
        page.screenshot(path=screenshot(request, f"index-{locale}"), full_page=True)
        page.context.close()
