"""The subscriber's web flows over HTTP, against a real uvicorn server on 127.0.0.1.

Mail goes to the outbox backend, which is also the test's mailbox (see signup_site.py).
"""

from __future__ import annotations

import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from itsdangerous import TimestampSigner

from feedsvc.model import SubscriberStatus, utcnow
from feedsvc.newsletter import confirmations
from feedsvc.newsletter.tokens import Purpose, Tokens
from tests.integration.signup_site import (
    CSRF_FIELD,
    Site,
    click_confirm,
    confirm_link_in,
    form_token,
    post_signup,
    running_site,
    session,
    signup,
)


@pytest.fixture
async def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Site]:
    monkeypatch.delenv("FEEDSVC_SECRET_KEY", raising=False)  # use data_dir/secret.key
    async with running_site(tmp_path) as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    async with session() as client:
        yield client


# --- CSRF ------------------------------------------------------------------------------


async def test_subscribe_without_csrf_is_403(site: Site, browser: aiohttp.ClientSession) -> None:
    form = signup("", "an@example.vn", csrf_token=None)
    async with browser.post(f"{site.base}/subscribe", data=form) as response:
        assert response.status == 403
        page = await response.text()
    assert "Không gửi được biểu mẫu" in page
    assert "Traceback" not in page
    assert site.store.subscribers.by_email("an@example.vn") is None


async def test_subscribe_with_wrong_csrf_is_403(site: Site, browser: aiohttp.ClientSession) -> None:
    await form_token(browser, f"{site.base}/")  # our cookie…
    async with session() as other:
        foreign = await form_token(other, f"{site.base}/")  # …and someone else's field
    for token in (foreign, foreign[:-2] + "xx", "bogus"):
        form = signup(token, "an@example.vn")
        async with browser.post(f"{site.base}/subscribe", data=form) as response:
            assert response.status == 403, token
    async with session() as cookieless:  # a genuine field without its cookie
        form = signup(foreign, "an@example.vn")
        async with cookieless.post(f"{site.base}/subscribe", data=form) as response:
            assert response.status == 403
    assert site.store.subscribers.by_email("an@example.vn") is None


async def test_csrf_cookie_is_httponly_and_lax(site: Site, browser: aiohttp.ClientSession) -> None:
    async with browser.get(f"{site.base}/") as response:
        cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # base_url is http here


# --- sign up and confirm ---------------------------------------------------------------


async def test_new_address_is_pending_and_its_email_link_confirms(
    site: Site, browser: aiohttp.ClientSession
) -> None:
    status, page = await post_signup(browser, site, "Nguyen.Van.A@Example.VN")
    assert status == 200
    assert "Hãy kiểm tra hộp thư" in page
    subscriber = site.store.subscribers.by_email("nguyen.van.a@example.vn")
    assert subscriber is not None
    assert subscriber.status is SubscriberStatus.PENDING
    assert subscriber.email == "Nguyen.Van.A@example.vn"  # domain normalized, local part kept
    assert subscriber.categories == ("xa-hoi", "tre-em")
    assert (subscriber.schedule, subscriber.locale) == ("weekly", "vi")
    assert subscriber.timezone == site.config.site.timezone

    [message] = await site.wait_for_mail(1)
    assert message["To"] == "Nguyen.Van.A@example.vn"
    assert message["Subject"] == "Xác nhận đăng ký nhận tin từ Bản tin Hà Tĩnh"
    assert "List-Unsubscribe" not in message  # a one-off email, not the newsletter
    link = confirm_link_in(message)
    assert "example" not in link.lower()  # the token names a random key, never the address

    status, page = await click_confirm(browser, link)
    assert status == 200
    assert "Bạn đã đăng ký thành công" in page
    confirmed = site.store.subscribers.get(subscriber.id)
    assert confirmed is not None
    assert confirmed.status is SubscriberStatus.ACTIVE
    assert confirmed.confirmed_at is not None

    status, again = await click_confirm(browser, link)  # idempotent
    assert status == 200
    assert "Bạn đã đăng ký thành công" in again
    still = site.store.subscribers.get(subscriber.id)
    assert still is not None
    assert still.confirmed_at == confirmed.confirmed_at


async def test_get_confirm_shows_a_button_and_changes_nothing(
    site: Site, browser: aiohttp.ClientSession
) -> None:
    """Mail scanners open every link in an email: only the button confirms."""
    await post_signup(browser, site, "quet.lien.ket@example.vn")
    link = confirm_link_in((await site.wait_for_mail(1))[0])
    async with aiohttp.ClientSession() as scanner:  # no cookies, as a link scanner
        for method in ("GET", "HEAD", "GET"):
            async with scanner.request(method, link) as response:
                assert response.status == 200
        async with scanner.get(link) as response:
            page = await response.text()
        async with scanner.post(link, data={}) as forged:  # a POST without the form's CSRF
            assert forged.status == 403
    assert f'<form method="post" action="{link}">' in page
    assert "Xác nhận đăng ký" in page
    pending = site.store.subscribers.by_email("quet.lien.ket@example.vn")
    assert pending is not None
    assert pending.status is SubscriberStatus.PENDING
    status, _ = await click_confirm(browser, link)
    assert status == 200
    active = site.store.subscribers.by_email("quet.lien.ket@example.vn")
    assert active is not None
    assert active.status is SubscriberStatus.ACTIVE


async def test_known_address_gets_the_same_response_and_no_second_email(
    site: Site, browser: aiohttp.ClientSession
) -> None:
    site.add_active("ban.doc@example.vn")
    status_new, new = await post_signup(browser, site, "nguoi.moi@example.vn")
    status_known, known = await post_signup(browser, site, "BAN.DOC@example.vn", schedule="daily")
    assert (status_new, status_known) == (200, 200)
    assert new.encode() == known.encode()
    assert CSRF_FIELD.search(new) is None  # nothing per-request to mask on this page

    messages = await site.wait_for_mail(1)
    assert [m["To"] for m in messages] == ["nguoi.moi@example.vn"]
    active = site.store.subscribers.by_email("ban.doc@example.vn")
    assert active is not None
    assert active.status is SubscriberStatus.ACTIVE
    assert active.schedule == "daily"  # a stranger's form changed nothing


async def test_pending_address_is_sent_a_fresh_confirmation(
    site: Site, browser: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, first = await post_signup(browser, site, "cho.xac.nhan@example.vn")
    [message] = await site.wait_for_mail(1)
    monkeypatch.setattr(confirmations, "SPACING", confirmations.SPACING * 0)  # a minute later
    _, second = await post_signup(browser, site, "cho.xac.nhan@example.vn", locale="en")
    assert first == second
    messages = await site.wait_for_mail(2)
    assert [m["To"] for m in messages] == ["cho.xac.nhan@example.vn"] * 2
    assert messages[1]["Subject"].startswith("Confirm your subscription")  # the new choice
    first_key, second_key = (
        site.tokens.read(Purpose.CONFIRM, confirm_link_in(m).rsplit("/", 1)[1]).key
        for m in (message, messages[1])
    )
    assert first_key == second_key  # the same sign-up: the first email's link works too


async def test_honeypot_stores_and_sends_nothing(
    site: Site, browser: aiohttp.ClientSession
) -> None:
    _, person = await post_signup(browser, site, "nguoi.that@example.vn")
    status, bot = await post_signup(browser, site, "bot@example.vn", website="http://spam.example")
    assert status == 200
    assert bot == person
    assert site.store.subscribers.by_email("bot@example.vn") is None
    assert [m["To"] for m in await site.wait_for_mail(1)] == ["nguoi.that@example.vn"]


async def test_bad_address_shows_the_form_again_with_a_message(
    site: Site, browser: aiohttp.ClientSession
) -> None:
    status, page = await post_signup(browser, site, "khong-phai-email@")
    assert status == 400
    assert "Hãy nhập một địa chỉ email hợp lệ" in page
    assert 'value="khong-phai-email@"' in page  # what they typed is kept
    assert CSRF_FIELD.search(page)  # and they can submit again
    status, page = await post_signup(browser, site, "ok@example.vn", category=[])
    assert status == 400
    assert "Hãy chọn ít nhất một chuyên mục." in page
    status, page = await post_signup(browser, site, "ok@example.vn", category=["the-thao"])
    assert status == 400
    status, page = await post_signup(browser, site, "ok@example.vn", schedule="hourly")
    assert status == 400
    assert "Hãy chọn tần suất nhận bản tin." in page
    assert site.store.subscribers.list() == []


async def test_english_when_the_browser_prefers_it(site: Site) -> None:
    async with aiohttp.ClientSession(headers={"Accept-Language": "en-GB,en;q=0.9"}) as client:
        async with client.get(f"{site.base}/") as response:
            page = await response.text()
    assert "Get the newsletter by email" in page
    assert 'value="en" checked' in page  # emails default to the page's language


async def test_too_many_signups_for_one_address_is_429(
    site: Site, browser: aiohttp.ClientSession
) -> None:
    for _ in range(5):
        status, _ = await post_signup(browser, site, "lap.lai@example.vn")
        assert status == 200
    status, page = await post_signup(browser, site, "LAP.LAI@example.vn")
    assert status == 429
    assert "Quá nhiều lần thử" in page
    status, _ = await post_signup(browser, site, "nguoi.khac@example.vn")
    assert status == 200  # only that address is limited


async def test_too_many_signups_from_one_client_is_429(
    site: Site, browser: aiohttp.ClientSession
) -> None:
    token = await form_token(browser, f"{site.base}/")
    for number in range(20):
        form = signup(token, f"bot{number}@example.vn", website="x")  # cheap: honeypot
        async with browser.post(f"{site.base}/subscribe", data=form) as response:
            assert response.status == 200
    async with browser.post(f"{site.base}/subscribe", data=signup(token, "x@example.vn")) as r:
        assert r.status == 429
        assert r.headers["Retry-After"] == "3600"


# --- preferences -----------------------------------------------------------------------


async def test_preferences_change_persists(site: Site, browser: aiohttp.ClientSession) -> None:
    reader = site.add_active()
    subscriber_id = reader.id
    url = site.link(Purpose.PREFERENCES, reader)
    token = await form_token(browser, url)
    form = [
        ("csrf_token", token),
        ("category", "chinh-tri"),
        ("category", "xa-hoi"),
        ("schedule", "weekly"),
        ("locale", "en"),
    ]
    async with browser.post(url, data=form) as response:
        assert response.status == 200  # after the 303 back to the page
        assert "Đã lưu tùy chọn của bạn." in await response.text()
    subscriber = site.store.subscribers.get(subscriber_id)
    assert subscriber is not None
    assert subscriber.categories == ("xa-hoi", "chinh-tri")  # config order
    assert (subscriber.schedule, subscriber.locale) == ("weekly", "en")
    assert subscriber.status is SubscriberStatus.ACTIVE


async def test_preferences_post_needs_csrf_and_valid_choices(
    site: Site, browser: aiohttp.ClientSession
) -> None:
    reader = site.add_active()
    subscriber_id = reader.id
    url = site.link(Purpose.PREFERENCES, reader)
    form = [("category", "chinh-tri"), ("schedule", "weekly"), ("locale", "en")]
    async with browser.post(url, data=form) as response:
        assert response.status == 403
    token = await form_token(browser, url)
    async with browser.post(url, data=[("csrf_token", token), ("schedule", "weekly")]) as r:
        assert r.status == 400
        assert "Hãy chọn ít nhất một chuyên mục." in await r.text()
    subscriber = site.store.subscribers.get(subscriber_id)
    assert subscriber is not None
    assert subscriber.categories == ("xa-hoi",)


# --- unsubscribe -----------------------------------------------------------------------


async def test_get_unsubscribe_shows_a_button_and_changes_nothing(
    site: Site, browser: aiohttp.ClientSession
) -> None:
    reader = site.add_active()
    subscriber_id = reader.id
    url = site.link(Purpose.UNSUBSCRIBE, reader)
    for _ in range(2):
        async with browser.get(url) as response:
            assert response.status == 200
            page = await response.text()
    assert f'<form method="post" action="{url}">' in page
    assert "Hủy đăng ký nhận bản tin?" in page
    async with browser.head(url) as head:
        assert head.status == 200
    subscriber = site.store.subscribers.get(subscriber_id)
    assert subscriber is not None
    assert subscriber.status is SubscriberStatus.ACTIVE


async def test_unsubscribe_button_posts_with_csrf(
    site: Site, browser: aiohttp.ClientSession
) -> None:
    reader = site.add_active()
    subscriber_id = reader.id
    url = site.link(Purpose.UNSUBSCRIBE, reader)
    async with browser.post(url, data={"csrf_token": "forged"}) as forged:
        assert forged.status == 403
    token = await form_token(browser, url)
    async with browser.post(url, data={"csrf_token": token}) as response:
        assert response.status == 200
        assert "Bạn đã hủy đăng ký" in await response.text()
    subscriber = site.store.subscribers.get(subscriber_id)
    assert subscriber is not None
    assert subscriber.status is SubscriberStatus.UNSUBSCRIBED


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
async def test_one_click_unsubscribe_works_without_cookies(site: Site, encoding: str) -> None:
    """RFC 8058: the mail provider POSTs ``List-Unsubscribe=One-Click`` with no cookies."""
    reader = site.add_active()
    subscriber_id = reader.id
    url = site.link(Purpose.UNSUBSCRIBE, reader)
    if encoding == "urlencoded":
        body: aiohttp.FormData | str = "List-Unsubscribe=One-Click"
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    else:
        body = aiohttp.FormData({"List-Unsubscribe": "One-Click"}, default_to_multipart=True)
        headers = {}
    async with aiohttp.ClientSession() as bare:  # no cookie jar contents, no CSRF
        for _ in range(2):  # a retried POST is fine too
            async with bare.post(url, data=body, headers=headers) as response:
                assert response.status == 200
    subscriber = site.store.subscribers.get(subscriber_id)
    assert subscriber is not None
    assert subscriber.status is SubscriberStatus.UNSUBSCRIBED


async def test_old_confirm_link_does_not_undo_an_unsubscribe(
    site: Site, browser: aiohttp.ClientSession
) -> None:
    reader = site.add_active()
    site.store.subscribers.update(reader.id, status=SubscriberStatus.UNSUBSCRIBED)
    link = site.link(Purpose.CONFIRM, reader)
    async with browser.get(link) as response:
        assert response.status == 400
    async with browser.post(link, data={"csrf_token": await form_token(browser, site.base)}) as r:
        assert r.status == 400
    subscriber = site.store.subscribers.get(reader.id)
    assert subscriber is not None
    assert subscriber.status is SubscriberStatus.UNSUBSCRIBED


# --- bad tokens ------------------------------------------------------------------------


async def test_tampered_or_misused_tokens_get_a_clear_page(
    site: Site, browser: aiohttp.ClientSession
) -> None:
    reader = site.add_active()
    subscriber_id = reader.id
    unsubscribe = site.tokens.subscriber_token(Purpose.UNSUBSCRIBE, reader)
    tampered = unsubscribe[:-3] + ("aaa" if not unsubscribe.endswith("aaa") else "bbb")
    other_key = Tokens(b"another-secret-key-of-some-length")
    cases = [
        ("GET", f"/unsubscribe/{tampered}"),
        ("POST", f"/unsubscribe/{tampered}"),
        ("GET", f"/confirm/{unsubscribe}"),  # a token of another purpose
        ("GET", f"/preferences/{unsubscribe}"),
        ("GET", f"/confirm/{other_key.subscriber_token(Purpose.CONFIRM, reader)}"),
        ("GET", f"/preferences/{site.tokens.dumps(Purpose.PREFERENCES, 'ban@example.vn')}"),
        ("GET", f"/preferences/{site.tokens.dumps(Purpose.PREFERENCES, [reader.key])}"),
        ("GET", f"/confirm/{site.tokens.dumps(Purpose.CONFIRM, 999_999)}"),
        ("GET", f"/confirm/{site.tokens.dumps(Purpose.CONFIRM, subscriber_id)}"),  # old style
        ("GET", "/confirm/not-a-token"),
    ]
    for method, path in cases:
        data = "List-Unsubscribe=One-Click" if method == "POST" else None
        async with browser.request(method, site.base + path, data=data) as response:
            assert response.status == 400, path
            page = await response.text()
        assert "Liên kết không hợp lệ hoặc đã hết hạn" in page, path
    subscriber = site.store.subscribers.get(subscriber_id)
    assert subscriber is not None
    assert subscriber.status is SubscriberStatus.ACTIVE


async def test_expired_confirm_link_gets_a_clear_page(
    site: Site, browser: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscriber, _ = site.store.subscribers.add(
        "cham@example.vn",
        categories=("xa-hoi",),
        schedule="daily",
        locale="vi",
        timezone="Asia/Ho_Chi_Minh",
        confirmed=False,
        now=utcnow(),
    )
    eight_days_ago = int(time.time()) - 8 * 86400
    with monkeypatch.context() as patch:  # sign as if eight days ago
        patch.setattr(TimestampSigner, "get_timestamp", lambda self: eight_days_ago)
        old = site.link(Purpose.CONFIRM, subscriber)
        lasting = site.link(Purpose.UNSUBSCRIBE, subscriber)
    async with browser.get(old) as response:
        assert response.status == 400
        page = await response.text()
    assert "Liên kết xác nhận chỉ dùng được trong 7 ngày" in page
    pending = site.store.subscribers.get(subscriber.id)
    assert pending is not None
    assert pending.status is SubscriberStatus.PENDING
    async with browser.get(lasting) as response:  # unsubscribe links never expire
        assert response.status == 200


async def test_secret_key_is_private_and_shared(site: Site) -> None:
    key = site.config.data_path / "secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    again = Tokens.from_config(site.config)  # another process, same data_dir
    token = site.tokens.dumps(Purpose.UNSUBSCRIBE, "k3y")
    assert again.read(Purpose.UNSUBSCRIBE, token).key == "k3y"
