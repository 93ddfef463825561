"""The operator console through a real `feedsvc serve` and a real browser (Playwright with
Debian's Chromium), on a phone's width and a desktop's, with axe-core on every page:
signing in (a wrong password, then the right one), pausing a source that `feedsvc sources
list` then shows paused, confirming a pending subscriber, finding one reader among 10,000
by a folded search, and opening an edition. And without a browser: a request without the
session or its CSRF token changes nothing (403)."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from feedsvc import config as config_module
from feedsvc import signin
from feedsvc.model import IncidentKind, NewIncident, ResolveIncident, SubscriberStatus, utcnow
from feedsvc.store import Store
from tests._browser import browser, context, look  # noqa: F401 (browser is a fixture)
from tests._net import free_port, wait_until_up
from tests._readers import add_many
from tests._seed import add_readers, entries_before_digest

PASSWORD = "Mật khẩu của tòa soạn 2026"
READERS = 10_000
PENDING = "cho.xac.nhan@example.vn"
FOUND = "nguyen.van.an@gmail.com"


@dataclass(frozen=True, slots=True)
class Newsroom:
    base: str
    config: Path

    def store(self) -> Store:
        return Store.open(config_module.load(self.config).database_url)


def write_config(tmp_path: Path, port: int, *, admin: bool = True) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""\
site:
  title: "Báo Hà Tĩnh — Bản tin"
  base_url: "http://127.0.0.1:{port}"
http:
  port: {port}
  admin: {"true" if admin else "false"}
sources:
  - id: xa-hoi
    url: "https://baohatinh.vn/rss/xa-hoi.rss"
    categories: [xa-hoi]
  - id: kinh-te
    url: "https://baohatinh.vn/rss/kinh-te.rss"
    categories: [kinh-te]
categories:
  - id: xa-hoi
    title: "Xã hội"
  - id: kinh-te
    title: "Kinh tế"
newsletter:
  from: "Bản tin Hà Tĩnh <bantin@example.vn>"
""",
        encoding="utf-8",
    )
    return path


def feedsvc(
    *args: str, config: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "feedsvc", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env or dict(os.environ),
    )


@pytest.fixture(scope="module")
def newsroom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Newsroom]:
    """A newsroom that sent one edition, with 10,000 readers and one pending, served with
    the console on."""
    tmp_path = tmp_path_factory.mktemp("console")
    port = free_port()
    path = write_config(tmp_path, port)
    config = config_module.load(path)
    store = Store.open(config.database_url)
    now = utcnow().replace(microsecond=0)
    seen = entries_before_digest(config, store, ["Trẻ em Hà Tĩnh đến trường"], now)
    store.sources.sync([(s.id, s.url) for s in config.sources], now)
    add_readers(store, 2, schedule="daily", since=seen)
    add_many(store, READERS, now=now, categories=["xa-hoi", "kinh-te"])
    for email, status in ((PENDING, "pending"), (FOUND, "active")):
        store.subscribers.insert(
            email,
            categories=["xa-hoi"],
            schedule="daily",
            locale="vi",
            timezone="Asia/Ho_Chi_Minh",
            status=SubscriberStatus(status),
            created_at=now,
            confirmed_at=None,
        )
    store.close()
    sent = feedsvc("digest", "send", "daily", "--now", config=path)
    assert sent.returncode == 0, sent.stderr
    env = {k: v for k, v in os.environ.items() if k != "FEEDSVC_SECRET_KEY"}
    env["FEEDSVC_ADMIN_PASSWORD_HASH"] = signin.hash_password(PASSWORD)
    server = subprocess.Popen(
        [sys.executable, "-m", "feedsvc", "serve", "--config", str(path)], env=env
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz")
        yield Newsroom(f"http://127.0.0.1:{port}", path)
    finally:
        server.terminate()
        server.wait(timeout=20)


def sign_in(page: Any, newsroom: Newsroom, request: pytest.FixtureRequest, shot: str) -> None:
    page.goto(f"{newsroom.base}/admin/sources")
    assert page.url.startswith(f"{newsroom.base}/admin/login")
    look(page, f"{shot}-login", request)
    page.get_by_label("Mật khẩu").fill("không phải mật khẩu")
    page.get_by_role("button", name="Đăng nhập").click()
    page.get_by_text("Mật khẩu không đúng.").wait_for()
    look(page, f"{shot}-wrong-password", request)
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.get_by_role("heading", name="Nguồn lấy tin").wait_for()
    assert page.url == f"{newsroom.base}/admin/sources"


def test_an_operator_runs_the_newsroom_from_a_phone(
    browser: Any,  # noqa: F811 (the fixture)
    newsroom: Newsroom,
    request: pytest.FixtureRequest,
) -> None:
    page = context(browser).new_page()
    sign_in(page, newsroom, request, "phone")
    look(page, "sources", request)

    card = page.locator("#source-xa-hoi")
    card.get_by_role("button", name="Tạm dừng").click()
    page.get_by_role("status").wait_for()
    assert page.locator("#source-xa-hoi").get_attribute("data-status") == "paused"
    look(page, "sources-paused", request)
    listed = feedsvc("sources", "list", "--json", config=newsroom.config)
    assert {row["id"]: row["status"] for row in json.loads(listed.stdout)}["xa-hoi"] == "paused"

    page.get_by_role("link", name="Người đăng ký").click()
    page.get_by_label("Trạng thái", exact=True).select_option("pending")
    page.get_by_label("Tìm theo địa chỉ").fill("cho.xac")
    page.get_by_role("button", name="Tìm", exact=True).click()
    page.get_by_role("button", name=f"Xác nhận {PENDING}", exact=True).click()
    page.get_by_text("Đã xác nhận: 1.").wait_for()
    look(page, "subscriber-confirmed", request)
    store = newsroom.store()
    try:
        confirmed = store.subscribers.by_email(PENDING)
    finally:
        store.close()
    assert confirmed is not None
    assert confirmed.status is SubscriberStatus.ACTIVE

    page.goto(f"{newsroom.base}/admin/subscribers")
    page.get_by_label("Tìm theo địa chỉ").fill("NguyenVanAn+baohatinh@GMAIL.com")
    page.get_by_role("button", name="Tìm", exact=True).click()
    page.get_by_text("1 người đăng ký phù hợp.").wait_for()
    assert page.locator(".subscriber .email").all_inner_texts() == [FOUND]
    look(page, "subscriber-found", request)

    page.get_by_role("link", name="Các số bản tin").click()
    page.get_by_role("heading", name="Số người đăng ký mỗi kỳ").wait_for()
    look(page, "editions", request)
    page.locator(".period a").first.click()
    page.get_by_role("heading", name="Xã hội").wait_for()
    assert "/digests/daily/" in page.url

    page.goto(f"{newsroom.base}/admin/events")
    events = page.locator(".event-list").inner_text()
    assert "pause" in events
    assert "confirm" in events
    assert PENDING not in events  # the log names subscribers by id, never by address
    look(page, "events", request)
    page.context.close()


def test_the_console_on_a_desktop(
    browser: Any,  # noqa: F811 (the fixture)
    newsroom: Newsroom,
    request: pytest.FixtureRequest,
) -> None:
    page = context(browser, phone=False, locale="en-GB").new_page()
    sign_in_en(page, newsroom)
    for name in ("sources", "subscribers", "editions", "events"):
        page.goto(f"{newsroom.base}/admin/{name}")
        assert page.locator("html").get_attribute("lang") == "en"
        html = page.content()
        assert "<script" not in html  # the pages' CSP allows no script and no inline style
        assert " style=" not in html
        look(page, f"desktop-{name}", request)
    page.get_by_role("button", name="Sign out").click()
    page.goto(f"{newsroom.base}/admin/sources")
    assert page.url.startswith(f"{newsroom.base}/admin/login")
    page.context.close()


def sign_in_en(page: Any, newsroom: Newsroom) -> None:
    page.goto(f"{newsroom.base}/admin/login")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Sources").wait_for()


class Client:
    """urllib with a cookie jar: a browser without a browser."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> tuple[int, str]:
        return self._open(urllib.request.Request(self.base + path))

    def post(self, path: str, fields: dict[str, str]) -> tuple[int, str]:
        body = urllib.parse.urlencode(fields).encode()
        return self._open(urllib.request.Request(self.base + path, data=body, method="POST"))

    def _open(self, request: urllib.request.Request) -> tuple[int, str]:
        try:
            with self.opener.open(request) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, error.read().decode()


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_without_the_session_or_its_csrf_token_nothing_changes(newsroom: Newsroom) -> None:
    stranger = Client(newsroom.base)
    status, _ = stranger.post("/admin/sources/kinh-te/pause", {"csrf_token": "x"})
    assert status == 403
    status, _ = stranger.post("/admin/subscribers/act", {"row": "delete:1"})
    assert status == 403

    operator = Client(newsroom.base)
    _, login = operator.get("/admin/login")
    status, page = operator.post("/admin/login", {"password": PASSWORD, "csrf_token": csrf(login)})
    assert status == 200
    status, _ = operator.post("/admin/sources/kinh-te/pause", {})
    assert status == 403
    status, _ = operator.post("/admin/sources/kinh-te/pause", {"csrf_token": csrf(login)})
    assert status == 403  # the sign-in form's token is not the session's
    forged = Client(newsroom.base)  # another session's token does not carry over either
    _, other = forged.get("/admin/login")
    forged.post("/admin/login", {"password": PASSWORD, "csrf_token": csrf(other)})
    status, _ = operator.post(
        "/admin/sources/kinh-te/pause", {"csrf_token": csrf(forged.get("/admin/sources")[1])}
    )
    assert status == 403
    store = newsroom.store()
    try:
        [source] = store.sources.list(["kinh-te"])
        assert source.paused_at is None
        assert store.subscribers.get(1) is not None
    finally:
        store.close()
    status, _ = operator.post("/admin/sources/kinh-te/pause", {"csrf_token": csrf(page)})
    assert status == 200  # with both, it happens (and the redirect lands on the page)
    status, _ = operator.post("/admin/sources/kinh-te/resume", {"csrf_token": csrf(page)})
    assert status == 200


def test_a_sign_in_form_without_its_token_is_refused(newsroom: Newsroom) -> None:
    client = Client(newsroom.base)
    status, _ = client.post("/admin/login", {"password": PASSWORD})
    assert status == 403
    assert all(cookie.name != "feedsvc_admin" for cookie in client.jar)


def test_the_console_is_off_unless_configured(tmp_path: Path) -> None:
    port = free_port()
    path = write_config(tmp_path, port, admin=False)
    env = {k: v for k, v in os.environ.items() if k != "FEEDSVC_ADMIN_PASSWORD_HASH"}
    server = subprocess.Popen(
        [sys.executable, "-m", "feedsvc", "serve", "--config", str(path)], env=env
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz")
        client = Client(f"http://127.0.0.1:{port}")
        assert client.get("/admin/login")[0] == 404
        assert client.post("/admin/sources/xa-hoi/pause", {})[0] == 404
    finally:
        server.terminate()
        server.wait(timeout=20)
    checked = feedsvc("check", config=write_config(tmp_path, port), env=env)
    assert checked.returncode == 1
    assert (
        f"{path}:6: http.admin is true but $FEEDSVC_ADMIN_PASSWORD_HASH is not set"
        in checked.stderr
    )


def signed_in(newsroom: Newsroom) -> tuple[Client, str]:
    """A console session through urllib, and the session's CSRF token."""
    operator = Client(newsroom.base)
    _, login = operator.get("/admin/login")
    status, page = operator.post("/admin/login", {"password": PASSWORD, "csrf_token": csrf(login)})
    assert status == 200
    return operator, csrf(page)


def test_the_session_cookie_is_http_only_strict_and_expires(newsroom: Newsroom) -> None:
    client = Client(newsroom.base)
    _, login = client.get("/admin/login")
    body = urllib.parse.urlencode({"password": PASSWORD, "csrf_token": csrf(login)}).encode()
    request = urllib.request.Request(f"{newsroom.base}/admin/login", data=body, method="POST")

    class Stay(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None  # keep the sign-in answer itself, with its Set-Cookie

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(client.jar), Stay)
    try:
        opener.open(request)
        raise AssertionError("the sign-in should answer with a redirect")
    except urllib.error.HTTPError as answer:
        cookies = answer.headers.get_all("Set-Cookie") or []
    [session] = [c for c in cookies if c.startswith("feedsvc_admin=")]
    flags = {part.strip().split("=")[0].lower() for part in session.split(";")}
    assert {"httponly", "max-age", "path"} <= flags
    assert "samesite=strict" in session.lower()
    assert "secure" not in flags  # http://127.0.0.1: a Secure cookie would never come back


def test_open_incidents_are_listed_above_the_sources(newsroom: Newsroom) -> None:
    store = newsroom.store()
    since = utcnow().replace(microsecond=0)
    try:
        store.incidents.apply(
            [NewIncident("kinh-te", IncidentKind.FAILING, since, "HTTP 503", opened=True)], since
        )
        operator, _ = signed_in(newsroom)
        status, page = operator.get("/admin/sources")
        assert status == 200
        line = re.search(r'<li id="incident-kinh-te">(.*?)</li>', page, re.S)
        assert line is not None, "the open incident is not on the page"
        assert 'href="#source-kinh-te"' in line.group(1)
        assert "Sự cố đang mở" in page
        assert "HTTP 503" in line.group(1)
    finally:
        for incident in store.incidents.open():
            store.incidents.apply([ResolveIncident(incident.id, recovered=True)], utcnow())
        store.close()
    _, page = operator.get("/admin/sources")
    assert 'id="incident-kinh-te"' not in page


def test_the_console_exports_and_imports_the_clis_csv(newsroom: Newsroom) -> None:
    operator, token = signed_in(newsroom)
    status, exported = operator.get("/admin/subscribers/export")
    assert status == 200
    header, *rows = exported.splitlines()
    assert header.startswith("email,categories,schedule,locale,status")
    [found] = [row for row in rows if row.startswith(f"{FOUND},")]
    assert ",active," in found
    assert len(rows) == READERS + 4
    status, page = operator.post(
        "/admin/subscribers/import",
        {
            "csrf_token": token,
            "file": "email,categories,schedule,locale\nmoi@example.vn,xa-hoi,daily,vi\n",
        },
    )
    assert status == 200
    store = newsroom.store()
    try:
        [added] = [s for s in store.subscribers.list() if s.email == "moi@example.vn"]
        assert added.status is SubscriberStatus.PENDING  # without "confirmed", it must confirm
    finally:
        store.close()


def test_a_selection_is_unsubscribed_in_one_post(newsroom: Newsroom) -> None:
    store = newsroom.store()
    try:
        chosen = [s.id for s in store.subscribers.list() if s.email.startswith("doc.gia.")][:3]
    finally:
        store.close()
    assert len(chosen) == 3
    operator, token = signed_in(newsroom)
    body = urllib.parse.urlencode(
        [("csrf_token", token), ("bulk", "unsubscribe"), *(("id", str(i)) for i in chosen)]
    ).encode()
    request = urllib.request.Request(
        f"{newsroom.base}/admin/subscribers/act", data=body, method="POST"
    )
    status, _ = operator._open(request)
    assert status == 200
    store = newsroom.store()
    try:
        statuses = {store.subscribers.get(i).status for i in chosen}  # type: ignore[union-attr]
    finally:
        store.close()
    assert statuses == {SubscriberStatus.UNSUBSCRIBED}


def test_hash_password_reads_standard_input_and_signs_in(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "feedsvc", "admin", "hash-password"],
        input=f"{PASSWORD}\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    hashed = done.stdout.strip()
    assert signin.is_hash(hashed)
    assert PASSWORD not in done.stdout
    assert signin._verify(hashed, PASSWORD)
    assert not signin._verify(hashed, "sai")
    empty = subprocess.run(
        [sys.executable, "-m", "feedsvc", "admin", "hash-password"],
        input="\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert empty.returncode == 1
    assert "Traceback" not in empty.stderr
