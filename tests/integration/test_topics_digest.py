"""Topics followed by email, end to end: subscribers in SQLite and PostgreSQL, news filed by
the real publisher, digests sent through a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from feedsvc import config as config_module
from feedsvc.config import Config
from feedsvc.model import TOPICS_SECTION, ParsedEntry, ParsedFeed
from feedsvc.newsletter.compose import subscriber_links
from feedsvc.newsletter.deliver import Deliverer
from feedsvc.newsletter.mail import create_mailer
from feedsvc.newsletter.tokens import Tokens
from feedsvc.publish.regenerate import Publisher
from feedsvc.store import Store
from tests.smtpserver import SmtpServer

NOW = datetime(2026, 11, 28, 0, 30, tzinfo=UTC)  # 07:30 in Hà Tĩnh, after the 07:00 digest
PERIOD = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)

CONFIG = """\
site:
  title: "Báo Hà Tĩnh — Bản tin"
  base_url: "https://bantin.example.vn"
storage:
  url: "{db}"
sources:
  - id: xa-hoi
    url: "https://baohatinh.vn/rss/xa-hoi.rss"
    categories: [xa-hoi]
  - id: the-thao
    url: "https://baohatinh.vn/rss/the-thao.rss"
    categories: [the-thao]
categories:
  - id: xa-hoi
    title: "Xã hội"
  - id: the-thao
    title: "Thể thao"
newsletter:
  from: "Bản tin Hà Tĩnh <bantin@example.vn>"
mail:
  backend: smtp
  smtp:
    host: 127.0.0.1
    port: {port}
    starttls: false
  rate_per_second: 1000
"""

NEWS = {
    "xa-hoi": [
        ("da-nang-bao", "Đà Nẵng khẩn trương ứng phó bão số 3"),
        ("tre-em", "Trẻ em Hà Tĩnh đến trường sau lũ"),
        ("da-lat", "Người dân Đà Lạt đón du khách"),  # "dân", "Đà Lạt": not "đà nẵng"
        ("cau-rong", "Cầu Rồng phun lửa mừng khách", "Du khách về DA NANG dịp cuối tuần"),
    ],
    "the-thao": [
        ("shb", "SHB Đà-Nẵng thắng trên sân nhà"),
        ("hong-linh", "Hồng Lĩnh Hà Tĩnh hòa đáng tiếc"),
    ],
}
MATCHING = {"da-nang-bao", "cau-rong", "shb"}


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    async with SmtpServer() as server:
        yield server


@pytest.fixture
def config(tmp_path: Path, smtp: SmtpServer, db_url: str) -> Config:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(db=db_url, port=smtp.port), encoding="utf-8")
    return config_module.load(path)


@pytest.fixture
def store(config: Config) -> Iterator[Store]:
    opened = Store.open(config.storage.url)
    yield opened
    opened.close()


def store_news(config: Config, store: Store) -> None:
    seen = PERIOD - timedelta(hours=2)
    store.sources.sync([(s.id, str(s.url)) for s in config.sources], seen)
    new: list[int] = []
    for source in store.sources.list():
        items = tuple(
            ParsedEntry(
                identity=f"https://baohatinh.vn/{slug}.html",
                title=title,
                link=f"https://baohatinh.vn/{slug}.html",
                summary=summary[0] if summary else "Tin từ phóng viên.",
                published=seen - timedelta(minutes=n),
                content_hash=slug,
            )
            for n, (slug, title, *summary) in enumerate(NEWS[source.id])
        )
        new += store.entries.apply(source, ParsedFeed("Báo", None, items), {}, seen).new_ids
    Publisher(config, store).file(new)


def subscribe(store: Store, address: str, categories: tuple[str, ...], **fields: object) -> None:
    store.subscribers.add(
        address,
        categories=categories,
        schedule="daily",
        timezone="Asia/Ho_Chi_Minh",
        confirmed=True,
        now=PERIOD - timedelta(days=5),
        **fields,  # type: ignore[arg-type]
    )


async def send_digests(config: Config, store: Store) -> None:
    links = subscriber_links(config, Tokens("test-secret-key-0123456789"))
    mailer = create_mailer(config)
    sender = Deliverer(config, store, mailer, links=links, clock=lambda: NOW)
    sender.plan("daily")
    try:
        assert (await sender.send("daily")).states == {"sent": 3}
    finally:
        await mailer.close()


def received(smtp: SmtpServer, address: str) -> EmailMessage:
    [message] = smtp.received(address)
    parsed = email.message_from_bytes(message.data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None
    assert html is not None
    return str(text.get_content()), str(html.get_content())


def text_sections(text: str) -> dict[str, list[str]]:
    """The plain part's ``== Heading ==`` sections and the story slugs linked in each."""
    sections: dict[str, list[str]] = {}
    heading = None
    for line in text.splitlines():
        if line.startswith("== ") and line.endswith(" =="):
            heading = line[3:-3]
            sections[heading] = []
        elif heading and (found := re.fullmatch(r"\s+https://baohatinh\.vn/(.+)\.html", line)):
            sections[heading].append(found[1])
    return sections


def html_links(html: str) -> list[str]:
    return re.findall(r'href="https://baohatinh\.vn/([^"]+)\.html"', html)


@pytest.mark.parametrize(
    ("locale", "heading", "topic", "own"),
    [
        ("vi", "Chủ đề bạn theo dõi", "đà nẵng", "Xã hội"),
        ("en", "Your topics", "DA NANG", "Xã hội"),
    ],
)
async def test_a_topic_follower_gets_the_matching_new_stories_first_and_none_twice(
    config: Config, store: Store, smtp: SmtpServer, locale: str, heading: str, topic: str, own: str
) -> None:
    store_news(config, store)
    subscribe(store, "theo.doi@example.vn", ("xa-hoi",), locale=locale, topics=(topic,))
    subscribe(store, "ca.hai@example.vn", ("xa-hoi", "the-thao"), locale=locale, topics=(topic,))
    subscribe(store, "thuong@example.vn", ("xa-hoi",), locale=locale)
    await send_digests(config, store)

    # Only Xã hội: the topic brings SHB Đà Nẵng from Thể thao, a category not chosen.
    text, html = parts(received(smtp, "theo.doi@example.vn"))
    sections = text_sections(text)
    assert list(sections) == [heading, own]
    assert set(sections[heading]) == MATCHING
    assert sections[own] == ["tre-em", "da-lat"]  # the matching ones moved up, not repeated
    assert sorted(html_links(html)) == sorted([*MATCHING, "tre-em", "da-lat"])  # each once
    assert html.index(heading) < html.index(f">{own}<")

    # Both categories: every story once, the matching ones in the topics section.
    text, html = parts(received(smtp, "ca.hai@example.vn"))
    sections = text_sections(text)
    assert list(sections) == [heading, "Xã hội", "Thể thao"]
    assert set(sections[heading]) == MATCHING
    every = [slug for slugs in sections.values() for slug in slugs]
    assert sorted(every) == sorted(slug for news in NEWS.values() for slug, *_ in news)
    assert sorted(html_links(html)) == sorted(every)

    # No topics: the digest is as it always was.
    text, html = parts(received(smtp, "thuong@example.vn"))
    assert list(text_sections(text)) == [own]
    assert heading not in html


async def test_topic_editions_open_from_the_email_but_stay_out_of_the_archive(
    config: Config, store: Store, smtp: SmtpServer
) -> None:
    store_news(config, store)
    subscribe(store, "theo.doi@example.vn", ("xa-hoi",), locale="vi", topics=("đà nẵng",))
    subscribe(store, "a@example.vn", ("xa-hoi",), locale="vi")
    subscribe(store, "b@example.vn", ("xa-hoi",), locale="vi")
    await send_digests(config, store)
    [listed] = store.editions.archive()
    assert [s.category_id for s in listed.sections] == ["xa-hoi"]
    text, _ = parts(received(smtp, "theo.doi@example.vn"))
    edition_id = re.search(r"/digests/daily/([0-9a-f]{16})", text)
    assert edition_id is not None
    assert edition_id[1] != listed.id
    personal = store.editions.get(edition_id[1])
    assert personal is not None
    assert [s.category_id for s in personal.sections] == [TOPICS_SECTION, "xa-hoi"]
    a, b = (
        re.search(r"/digests/daily/(\w+)", parts(received(smtp, f"{x}@example.vn"))[0])
        for x in "ab"
    )
    assert a is not None
    assert b is not None
    assert a[1] == b[1] == listed.id  # those without topics still share one
