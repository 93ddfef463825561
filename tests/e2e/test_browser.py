"""A real browser signs up, confirms and unsubscribes, on a phone-sized screen.

`feedsvc serve` runs as its own process with the outbox mail backend; Chromium
(Debian's package, /usr/bin/chromium) is driven through Playwright's own driver.
Nothing is downloaded: Playwright is pointed at the system browser. Screenshots
of each page land in the test's tmp dir for a person to look at.

Without Chromium or Playwright the test skips and says why, except under CI
(the CI variable set), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from feedsvc import config as config_module
from feedsvc.model import Subscriber, SubscriberStatus
from feedsvc.newsletter.mail import OutboxMailer
from feedsvc.newsletter.tokens import Purpose, Tokens
from feedsvc.store import Store
from tests._net import free_port, wait_until_up

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
CONFIRM_LINK = re.compile(r"http://127\.0\.0\.1:\d+/confirm/[A-Za-z0-9._-]+")
CONFIG = """\
site:
  title: "Báo Hà Tĩnh — Bản tin"
  base_url: "{base}"
http:
  port: {port}
categories:
  - id: xa-hoi
    title: "Xã hội"
  - id: chinh-tri
    title: "Chính trị"
  - id: kinh-te
    title: "Kinh tế"
  - id: tre-em
    title: "Trẻ em"
newsletter:
  from: "Bản tin Hà Tĩnh <bantin@baohatinh.example>"
  schedules:
    daily: "0 7 * * *"
    weekly: "0 7 * * 1"
"""


def unavailable(reason: str) -> None:
    """Skip with the reason, or fail under CI, where every test must really run."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required when CI is set)")
    pytest.skip(reason)


@pytest.fixture
def sync_playwright() -> Any:
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install playwright)")
    return sync_playwright


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``feedsvc serve`` on a free port; yields its address and config file."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(base=base, port=port), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "FEEDSVC_SECRET_KEY"}  # the key file
    command = [sys.executable, "-m", "feedsvc", "serve", "--config", str(config)]
    server = subprocess.Popen(command, env=env)
    try:
        wait_until_up(f"{base}/healthz")
        yield base, config
    finally:
        server.terminate()
        server.wait(timeout=20)


def confirmation_link(outbox: OutboxMailer, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while not (outbox.directory.exists() and outbox.messages()):
        assert time.monotonic() < deadline, "no confirmation email arrived"
        time.sleep(0.05)
    [message] = outbox.messages()
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return CONFIRM_LINK.findall(str(body.get_content()))[0]


def test_sign_up_confirm_and_unsubscribe_in_a_browser(
    sync_playwright: Any, service: tuple[str, Path], tmp_path: Path
) -> None:
    base, config_path = service
    config = config_module.load(config_path)
    shots = tmp_path / "screenshots"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(
            viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="vi-VN"
        )
        page = context.new_page()
        sign_up(page, base, shots)
        confirm_and_change(page, confirmation_link(OutboxMailer(config.outbox_path)), shots)
        # The link in every digest's footer and List-Unsubscribe header:
        reader = stored_reader(config.database_url)
        unsubscribe(page, Tokens.from_config(config).link(base, Purpose.UNSUBSCRIBE, reader), shots)
        browser.close()

    subscriber = stored_reader(config.database_url)
    assert subscriber.status is SubscriberStatus.UNSUBSCRIBED
    assert subscriber.confirmed_at is not None
    assert subscriber.categories == ("xa-hoi", "kinh-te", "tre-em")
    assert subscriber.schedule == "daily"
    assert len(list(shots.glob("*.png"))) == 8


def stored_reader(database_url: str) -> Subscriber:
    store = Store.open(database_url)
    try:
        subscriber = store.subscribers.by_email("ban.doc@example.vn")
    finally:
        store.close()
    assert subscriber is not None
    return subscriber


def sign_up(page: Any, base: str, shots: Path) -> None:
    """The form on the home page, in Vietnamese: a typo first, then a good address."""
    page.goto(f"{base}/")
    assert page.locator("html").get_attribute("lang") == "vi"
    fits_the_screen(page)
    page.screenshot(path=shots / "1-index.png", full_page=True)
    page.fill("#email", "ban.doc@example")
    page.get_by_role("button", name="Đăng ký").click()
    page.get_by_text("Hãy nhập một địa chỉ email hợp lệ").wait_for()
    page.screenshot(path=shots / "1-index-error.png", full_page=True)
    page.fill("#email", "ban.doc@example.vn")
    page.get_by_label("Chính trị").uncheck()
    page.get_by_label("Hằng tuần").check()
    page.get_by_role("button", name="Đăng ký").click()
    page.get_by_role("heading", name="Hãy kiểm tra hộp thư").wait_for()
    page.screenshot(path=shots / "2-check-email.png", full_page=True)


def confirm_and_change(page: Any, confirm_link: str, shots: Path) -> None:
    """Open the emailed link, press its button, go on to the preferences, switch to daily."""
    page.goto(confirm_link)
    page.get_by_role("heading", name="Xác nhận đăng ký của bạn").wait_for()
    page.screenshot(path=shots / "3-confirm.png", full_page=True)
    page.get_by_role("button", name="Xác nhận đăng ký").click()
    page.get_by_role("heading", name="Bạn đã đăng ký thành công").wait_for()
    fits_the_screen(page)
    page.screenshot(path=shots / "3-confirmed.png", full_page=True)
    page.get_by_role("link", name="Thay đổi tùy chọn nhận tin").click()
    page.get_by_role("heading", name="Tùy chọn nhận bản tin").wait_for()
    page.get_by_label("Hằng ngày").check()
    page.get_by_role("button", name="Lưu thay đổi").click()
    page.get_by_text("Đã lưu tùy chọn của bạn.").wait_for()
    page.screenshot(path=shots / "4-preferences.png", full_page=True)


def unsubscribe(page: Any, link: str, shots: Path) -> None:
    """The page behind the link only asks; the button does it."""
    page.goto(link)
    page.get_by_role("heading", name="Hủy đăng ký nhận bản tin?").wait_for()
    fits_the_screen(page)
    page.screenshot(path=shots / "5-unsubscribe.png", full_page=True)
    page.get_by_role("button", name="Hủy đăng ký").click()
    page.get_by_role("heading", name="Bạn đã hủy đăng ký").wait_for()
    page.screenshot(path=shots / "6-unsubscribed.png", full_page=True)


def fits_the_screen(page: Any) -> None:
    """Nothing wider than a phone: no sideways scrolling."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px screen"
