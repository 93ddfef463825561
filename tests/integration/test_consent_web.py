"""Consent over HTTP: links that name nobody else, confirmation by a button, one limit per mailbox.

Each test is an attack or an accident from issue 9 and 10, played against a real
uvicorn on 127.0.0.1 with the outbox as the mailbox.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from itsdangerous import TimestampSigner

from feedsvc.model import SubscriberStatus
from feedsvc.newsletter.tokens import Purpose
from feedsvc.web import subscribe
from tests.integration.signup_site import (
    Site,
    click_confirm,
    confirm_link_in,
    form_token,
    links_on,
    post_signup,
    running_site,
    session,
    signup,
)

INVALID = "Liên kết không hợp lệ hoặc đã hết hạn"


@pytest.fixture
async def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Site]:
    monkeypatch.delenv("FEEDSVC_SECRET_KEY", raising=False)
    monkeypatch.setattr(subscribe, "PER_CLIENT", (1000, subscribe.PER_CLIENT[1]))  # one test IP
    async with running_site(tmp_path) as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    async with session() as client:
        yield client


async def sign_up_and_confirm(
    site: Site, client: aiohttp.ClientSession, email: str
) -> dict[str, str]:
    """A reader who signs up and confirms; their confirm, preferences and unsubscribe links."""
    before = len(site.mail())
    await post_signup(client, site, email)
    confirm = confirm_link_in((await site.wait_for_mail(before + 1))[-1])
    status, page = await click_confirm(client, confirm)
    assert status == 200
    links = links_on(page)
    async with client.get(links["preferences"]) as response:
        links |= links_on(await response.text())
    return {"confirm": confirm, **links}


async def test_a_removed_readers_links_never_reach_the_next_one(
    site: Site, browser: aiohttp.ClientSession
) -> None:
    """SQLite gave the next sign-up the removed reader's id, and with it their links."""
    old = await sign_up_and_confirm(site, browser, "nguoi.cu@example.vn")
    removed = site.store.subscribers.by_email("nguoi.cu@example.vn")
    assert removed is not None
    assert site.store.subscribers.remove("nguoi.cu@example.vn")
    await post_signup(browser, site, "nguoi.moi@example.vn")
    newcomer = site.store.subscribers.by_email("nguoi.moi@example.vn")
    assert newcomer is not None
    assert newcomer.id > removed.id  # ids are never reused

    async with aiohttp.ClientSession() as stranger:
        for route in ("preferences", "unsubscribe", "confirm"):
            async with stranger.get(old[route]) as response:
                page = await response.text()
                assert response.status == 400, route
            assert INVALID in page, route
            assert "nguoi.moi" not in page, route
        one_click = {"List-Unsubscribe": "One-Click"}
        async with stranger.post(old["unsubscribe"], data=one_click) as response:
            assert response.status == 400
    status, _ = await click_confirm(browser, old["confirm"])
    assert status == 400
    after = site.store.subscribers.get(newcomer.id)
    assert after is not None
    assert after.status is SubscriberStatus.PENDING
    assert after.categories == newcomer.categories


async def test_an_older_signups_confirm_link_confirms_nothing(
    site: Site, browser: aiohttp.ClientSession
) -> None:
    """A reader leaves; a stranger submits their address; the reader's old link stays dead."""
    links = await sign_up_and_confirm(site, browser, "da.roi.di@example.vn")
    one_click = {"List-Unsubscribe": "One-Click"}
    async with browser.post(links["unsubscribe"], data=one_click) as response:
        assert response.status == 200
    async with session() as stranger:
        await post_signup(stranger, site, "da.roi.di@example.vn", schedule="daily")
    reader = site.store.subscribers.by_email("da.roi.di@example.vn")
    assert reader is not None
    assert reader.status is SubscriberStatus.PENDING

    async with browser.get(links["confirm"]) as response:
        assert response.status == 400
        assert INVALID in await response.text()
    status, _ = await click_confirm(browser, links["confirm"])
    assert status == 400
    still = site.store.subscribers.get(reader.id)
    assert still is not None
    assert still.status is SubscriberStatus.PENDING
    for route in ("preferences", "unsubscribe"):  # the old era's links name nobody now
        async with browser.get(links[route]) as response:
            assert response.status == 400, route


async def test_plus_address_variants_share_the_mailboxs_limit(
    site: Site, browser: aiohttp.ClientSession
) -> None:
    statuses = []
    for n in range(25):
        status, _ = await post_signup(browser, site, f"muc.tieu+{n}@example.vn")
        statuses.append(status)
    status, _ = await post_signup(browser, site, "MUC.TIEU@example.vn")
    statuses.append(status)
    assert statuses[:5] == [200] * 5
    assert set(statuses[5:]) == {429}
    mail = await site.wait_for_mail(1)
    assert len(mail) == 1  # and no second one within a minute
    status, _ = await post_signup(browser, site, "nguoi.khac@example.vn")
    assert status == 200  # only that mailbox is limited


async def test_four_signups_in_a_second_send_one_email(
    site: Site, browser: aiohttp.ClientSession
) -> None:
    token = await form_token(browser, f"{site.base}/")
    started = time.monotonic()
    for _ in range(4):
        async with browser.post(
            f"{site.base}/subscribe", data=signup(token, "bam.nhieu@example.vn")
        ) as response:
            assert response.status == 200
    assert time.monotonic() - started < 1
    mail = await site.wait_for_mail(1)
    await site.wait_for_mail(1)  # give a second email every chance to appear
    assert [m["To"] for m in site.mail()] == ["bam.nhieu@example.vn"]
    status, _ = await click_confirm(browser, confirm_link_in(mail[0]))  # and it works
    assert status == 200


async def test_the_limit_is_shared_by_every_process(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """N processes on one database allow one limit, not N."""
    monkeypatch.delenv("FEEDSVC_SECRET_KEY", raising=False)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with (
        running_site(tmp_path / "a", db_url) as first,
        running_site(tmp_path / "b", db_url) as second,
        session() as client,
    ):
        statuses = []
        for n in range(6):
            target = first if n % 2 else second
            status, _ = await post_signup(client, target, "hai.noi@example.vn")
            statuses.append(status)
    assert statuses == [200] * 5 + [429]


async def test_an_address_that_needs_smtputf8_is_warned(
    site: Site, browser: aiohttp.ClientSession
) -> None:
    _, page = await post_signup(browser, site, "nguyễn@example.vn")
    assert "SMTPUTF8" in page
    assert "nguyễn" not in page  # the page is the same for every such address
    _, plain = await post_signup(browser, site, "nguyen@bücher.example")  # an A-label will do
    assert "SMTPUTF8" not in plain


async def test_an_old_style_unsubscribe_link_still_works_for_its_reader(
    site: Site, browser: aiohttp.ClientSession
) -> None:
    """Links in emails sent before the upgrade signed the id; RFC 8058 says they keep working."""
    reader = site.add_active("doc.gia.cu@example.vn")
    old_link = f"{site.base}/unsubscribe/{site.tokens.dumps(Purpose.UNSUBSCRIBE, reader.id)}"
    async with browser.get(old_link) as response:
        assert response.status == 200
        assert "doc.gia.cu@example.vn" in await response.text()
    async with aiohttp.ClientSession() as provider:
        async with provider.post(old_link, data={"List-Unsubscribe": "One-Click"}) as response:
            assert response.status == 200
    after = site.store.subscribers.get(reader.id)
    assert after is not None
    assert after.status is SubscriberStatus.UNSUBSCRIBED


async def test_an_old_style_link_older_than_its_reader_names_nobody(
    site: Site, browser: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An id-signed link from before this row existed was made for someone else."""
    reader = site.add_active("den.sau@example.vn")
    yesterday = int(time.time()) - 86400
    with monkeypatch.context() as patch:
        patch.setattr(TimestampSigner, "get_timestamp", lambda self: yesterday)
        unsubscribe = site.tokens.dumps(Purpose.UNSUBSCRIBE, reader.id)
        preferences = site.tokens.dumps(Purpose.PREFERENCES, reader.id)
    for path in (f"/unsubscribe/{unsubscribe}", f"/preferences/{preferences}"):
        async with browser.get(site.base + path) as response:
            assert response.status == 400, path
            assert "den.sau" not in await response.text()
    async with browser.post(
        f"{site.base}/unsubscribe/{unsubscribe}", data={"List-Unsubscribe": "One-Click"}
    ) as response:
        assert response.status == 400
    after = site.store.subscribers.get(reader.id)
    assert after is not None
    assert after.status is SubscriberStatus.ACTIVE
