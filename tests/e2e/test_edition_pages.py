"""A sent edition on the web, through a real `feedsvc serve`: the archive lists it, its
page shows the same stories as the email, and the archive's Atom feed is valid.
In a real browser at a phone's and a desktop's width, with axe-core on each page."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import pytest

from feedsvc import config as config_module
from feedsvc.model import utcnow
from feedsvc.newsletter.mail import OutboxMailer
from feedsvc.store import Store
from tests._browser import browser, context, look  # noqa: F401 (browser is a fixture)
from tests._net import free_port, wait_until_up
from tests._seed import add_readers, entries_before_digest
from tests.integration.test_feed_validation import run_jing

TITLES = [f"Tin {n}: Trẻ em Hà Tĩnh đến trường" for n in range(3)]


@pytest.fixture
def sent(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A newsroom that sent one edition (`digest send --now`), served on a free port."""
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
newsletter:
  from: "Bản tin Hà Tĩnh <bantin@example.vn>"
""",
        encoding="utf-8",
    )
    config = config_module.load(path)
    store = Store.open(config.database_url)
    seen = entries_before_digest(config, store, TITLES, utcnow().replace(microsecond=0))
    add_readers(store, 2, schedule="daily", since=seen)
    store.close()
    command = [sys.executable, "-m", "feedsvc"]
    subprocess.run(
        [*command, "digest", "send", "daily", "--now", "--config", str(path)], check=True
    )
    env = {k: v for k, v in os.environ.items() if k != "FEEDSVC_SECRET_KEY"}
    server = subprocess.Popen([*command, "serve", "--config", str(path)], env=env)
    try:
        wait_until_up(f"{base}/healthz")
        yield base, path
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_the_archive_lists_the_edition_and_its_feed_is_valid_atom(
    sent: tuple[str, Path], tmp_path: Path
) -> None:
    base, path = sent
    with urllib.request.urlopen(f"{base}/digests/") as response:
        index = response.read().decode()
    assert "/digests/daily/" in index
    with urllib.request.urlopen(f"{base}/digests/daily.atom") as response:
        body = response.read()
        etag = response.headers["ETag"]
    feed = feedparser.parse(body)
    assert not feed.bozo
    assert feed.feed.links[0].rel == "self"
    [entry] = feed.entries
    assert entry.link.startswith(f"{base}/digests/daily/")
    assert all(title in entry.summary for title in TITLES)
    checked = run_jing(body, tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    conditional = urllib.request.Request(f"{base}/digests/daily.atom")
    conditional.add_header("If-None-Match", etag)
    with pytest.raises(urllib.error.HTTPError) as not_modified:
        urllib.request.urlopen(conditional)
    assert not_modified.value.code == 304
    not_modified.value.close()
    config = config_module.load(path)
    emails = OutboxMailer(config.outbox_path).messages()
    assert len(emails) == 2
    assert entry.link.rsplit("/", 1)[1] in index  # both readers shared one edition


def test_view_in_browser_opens_the_edition_with_the_emails_stories(sent: tuple[str, Path]) -> None:
    base, path = sent
    [message, _] = OutboxMailer(config_module.load(path).outbox_path).messages()
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    first_link = re.search(r'<a [^>]*href="([^"]+)"', html)
    assert first_link is not None
    view = first_link.group(1)
    assert view.startswith(f"{base}/digests/daily/")
    assert f"Xem trong trình duyệt: {view}" in text
    with urllib.request.urlopen(view) as response:
        page = response.read().decode()
    emailed = re.findall(r'class="title" href="[^"]+"[^>]*>([^<]+)</a>', html)
    shown = re.findall(r'class="story-title" href="[^"]+"[^>]*>([^<]+)</a>', page)
    assert emailed == shown == list(reversed(TITLES))
    assert "reader0@example.vn" not in page  # nothing personal on the public page


def test_an_edition_page_in_a_browser(
    browser: Any,  # noqa: F811 (the fixture)
    sent: tuple[str, Path],
    request: pytest.FixtureRequest,
) -> None:
    base, _ = sent
    for phone in (True, False):
        page = context(browser, phone=phone).new_page()
        page.goto(f"{base}/digests/")
        look(page, f"archive-{'phone' if phone else 'desktop'}", request)
        page.get_by_role("link", name="Bản tin hằng ngày").first.click()
        page.get_by_role("heading", name="Xã hội").wait_for()
        assert page.locator("html").get_attribute("lang") == "vi"
        shown = page.locator(".story-title").all_inner_texts()
        assert shown == list(reversed(TITLES)) or sorted(shown) == sorted(TITLES)
        assert "@" not in page.locator("main").inner_text()  # nobody's address
        look(page, f"edition-{'phone' if phone else 'desktop'}", request)
        page.context.close()
