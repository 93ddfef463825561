"""Topics on the web: the sign-up form on ``/`` and ``/preferences/TOKEN``, through a real
uvicorn on 127.0.0.1; CSRF guards the topics as it guards every other choice."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from feedsvc.model import SubscriberStatus
from feedsvc.newsletter.tokens import Purpose
from tests.integration.signup_site import (
    Site,
    click_confirm,
    confirm_link_in,
    form_token,
    post_signup,
    running_site,
    session,
)


@pytest.fixture
async def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Site]:
    monkeypatch.delenv("FEEDSVC_SECRET_KEY", raising=False)
    async with running_site(tmp_path) as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    async with session() as client:
        yield client


async def page(client: aiohttp.ClientSession, url: str) -> str:
    async with client.get(url) as response:
        assert response.status == 200
        return await response.text()


def topics_of(site: Site, subscriber_id: int) -> tuple[str, ...]:
    stored = site.store.subscribers.get(subscriber_id)
    assert stored is not None
    return stored.topics


async def test_the_sign_up_form_offers_a_labelled_topics_field(
    site: Site, browser: aiohttp.ClientSession
) -> None:
    text = await page(browser, f"{site.base}/")
    assert '<label for="topics">Chủ đề theo dõi (không bắt buộc)</label>' in text
    assert text.count("<textarea") == text.count('<textarea id="topics" name="topics"') == 1
    assert 'aria-describedby="topics-hint"' in text
    async with session() as english:
        english.headers["Accept-Language"] = "en"
        assert "Topics to follow (optional)" in await page(english, f"{site.base}/")


async def test_topics_given_at_sign_up_are_kept_once_confirmed(
    site: Site, browser: aiohttp.ClientSession
) -> None:
    status, _ = await post_signup(
        browser, site, "theo.doi@example.vn", topics="đà nẵng\r\nDA NANG\r\n\r\nbão số 3"
    )
    assert status == 200
    [message] = await site.wait_for_mail(1)
    assert (await click_confirm(browser, confirm_link_in(message)))[0] == 200
    reader = site.store.subscribers.by_email("theo.doi@example.vn")
    assert reader is not None
    assert reader.status is SubscriberStatus.ACTIVE
    assert reader.topics == ("đà nẵng", "bão số 3")  # the second spelling of one topic dropped


async def test_a_bad_topic_shows_the_form_again_and_stores_nothing(
    site: Site, browser: aiohttp.ClientSession
) -> None:
    many = "\n".join(f"chủ đề {n}" for n in range(11))
    status, text = await post_signup(browser, site, "nhieu@example.vn", topics=many)
    assert status == 400
    assert "Chỉ theo dõi được tối đa 10 chủ đề." in text
    assert 'id="topics-error" role="alert"' in text
    assert "chủ đề 10</textarea>" in text  # what was typed comes back to be fixed
    assert site.store.subscribers.by_email("nhieu@example.vn") is None
    assert site.mail() == []


async def test_preferences_add_and_remove_topics(
    site: Site, browser: aiohttp.ClientSession
) -> None:
    reader = site.add_active()
    url = site.link(Purpose.PREFERENCES, reader)
    form = [("category", "xa-hoi"), ("schedule", "daily"), ("locale", "vi")]

    async with browser.post(url, data=[*form, ("topics", "đà nẵng")]) as response:
        assert response.status == 403  # no CSRF token: nothing changes
    assert site.store.subscribers.get(reader.id) == reader

    token = await form_token(browser, url)
    topics = "Đà Nẵng\nbão <b>số</b> 3\n"
    async with browser.post(url, data=[("csrf_token", token), *form, ("topics", topics)]) as r:
        assert r.status == 200  # after the 303 back to the page
        shown = await r.text()
    assert "Đã lưu tùy chọn của bạn." in shown
    assert ">Đà Nẵng\nbão &lt;b&gt;số&lt;/b&gt; 3</textarea>" in shown  # escaped, one a line
    assert "<b>số</b>" not in shown
    stored = site.store.subscribers.get(reader.id)
    assert stored == replace(reader, topics=("Đà Nẵng", "bão <b>số</b> 3"))

    token = await form_token(browser, url)
    kept = ("topics", "bão <b>số</b> 3")
    async with browser.post(url, data=[("csrf_token", token), *form, kept]) as r:
        assert r.status == 200
    assert topics_of(site, reader.id) == ("bão <b>số</b> 3",)

    token = await form_token(browser, url)
    async with browser.post(url, data=[("csrf_token", token), *form, ("topics", "")]) as r:
        assert r.status == 200
    assert topics_of(site, reader.id) == ()


async def test_preferences_refuse_a_too_long_topic_in_the_readers_language(site: Site) -> None:
    reader = site.add_active()
    url = site.link(Purpose.PREFERENCES, reader)
    async with session() as english:
        english.headers["Accept-Language"] = "en"
        token = await form_token(english, url)
        fields = [("csrf_token", token), ("category", "xa-hoi"), ("schedule", "daily")]
        fields += [("locale", "vi"), ("topics", "ư" * 61)]
        async with english.post(url, data=fields) as response:
            assert response.status == 400
            text = html.unescape(await response.text())
    assert "A topic can be at most 60 characters long." in text
    assert topics_of(site, reader.id) == ()
