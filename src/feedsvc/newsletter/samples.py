"""Sample data for rendering every template once (``feedsvc check``): a digest with two
sections, a subscriber, an edition, and the context the site gives every page.

Rendering the real ``render_digest`` and ``render_confirmation`` exercises the email
templates exactly as a send does; each page is rendered with the context every page
gets plus the objects the sign-up, edition and archive pages use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from types import SimpleNamespace
from typing import Any

from jinja2 import ChainableUndefined, Environment

from feedsvc import i18n, templates_loader
from feedsvc.config import Config
from feedsvc.model import (
    Digest,
    DigestSection,
    Edition,
    EditionSection,
    Entry,
    Subscriber,
    SubscriberStatus,
)
from feedsvc.newsletter import archive, render

NOW = datetime(2026, 12, 3, 0, 0, tzinfo=UTC)


def entries() -> list[Entry]:
    return [
        Entry(
            id=n,
            source_id="baohatinh-xa-hoi",
            identity=f"tin-{n}",
            title=f"Hà Tĩnh: {title}",
            first_seen=NOW - timedelta(hours=n),
            link=f"https://baohatinh.vn/tin-{n}.html",
            summary="Sáng 2/12, hơn 300 học sinh tiểu học được tặng áo ấm trước mùa đông.",
            published=NOW - timedelta(hours=n),
        )
        for n, title in enumerate(
            ["trẻ em đến trường", "giá lúa tăng", "đường ven biển thông xe", "mưa lớn"], 1
        )
    ]


def digest(config: Config) -> Digest:
    items = entries()
    ids = [category.id for category in config.categories] or ["xa-hoi"]
    titles = {category.id: category.title for category in config.categories}
    sections = tuple(
        DigestSection(cid, titles.get(cid, cid), tuple(items[n % 2 :: 2]), more=1)
        for n, cid in enumerate(ids[:2])
    )
    return Digest(sections, since=NOW - timedelta(days=1), until=NOW)


def subscriber(config: Config) -> Subscriber:
    return Subscriber(
        id=1,
        email="ban.doc@example.vn",
        status=SubscriberStatus.ACTIVE,
        categories=tuple(category.id for category in config.categories),
        schedule=config.newsletter.default_schedule,
        locale=config.site.language,
        timezone=config.site.timezone,
        created_at=NOW,
        confirmed_at=NOW,
    )


def renders(config: Config) -> Iterator[tuple[str, Callable[[], object]]]:
    """``(template name, render it)`` for the emails in both languages and every page.

    Pages are rendered with a lenient ``Undefined``: a page may use what its own
    handler passes, which the samples do not all hold; what fails is a real mistake
    (a syntax error, a filter or call on the wrong kind of value).
    """
    for locale in i18n.LOCALES:
        yield "email/digest.html", partial(_digest, config, locale)
        yield "email/confirm.html", partial(_confirmation, config, locale)
    env = templates_loader.environment(config, "web").overlay(undefined=ChainableUndefined)
    for name in env.list_templates(filter_func=lambda name: name.startswith("web/")):
        if not name.rsplit("/", 1)[-1].startswith("_"):  # partials come with their pages
            for locale in i18n.LOCALES:
                yield name, partial(_page, env, name, config, locale)


def _digest(config: Config, locale: str) -> object:
    return render.render_digest(
        digest(config),
        config=config,
        locale=locale,
        timezone=config.site.timezone,
        now=NOW,
        schedule=config.newsletter.default_schedule,
        view_url=config.site.base_url,
    )


def _confirmation(config: Config, locale: str) -> object:
    schedule = config.newsletter.default_schedule
    return render.render_confirmation(config=config, locale=locale, schedule=schedule)


def _page(env: Environment, name: str, config: Config, locale: str) -> object:
    return env.get_template(name).render(page_context(config, locale))


def page_context(config: Config, locale: str) -> dict[str, Any]:
    """What ``web.app.Site.render`` gives every page, and sample objects for the rest."""
    base = config.site.base_url.rstrip("/")
    edition = Edition(
        "0123456789abcdef",
        config.newsletter.default_schedule,
        NOW,
        locale,
        tuple(c.id for c in config.categories),
        tuple(EditionSection(c.id, (1, 2), 0) for c in config.categories[:2]),
    )
    shown = archive.view(config, edition, {entry.id: entry for entry in entries()})
    return {
        "_": i18n.translator(locale),
        "locale": locale,
        "site": config.site,
        "base_url": base,
        "feeds": [],
        "feed_types": {},
        "schedule_title": lambda name: i18n.schedule_title(config, name, locale),
        "csrf_token": "sample",
        "form": SimpleNamespace(
            email="",
            categories=tuple(c.id for c in config.categories),
            schedule=config.newsletter.default_schedule,
            locale=locale,
            errors={},
        ),
        "offered": {
            "categories": [(c.id, c.title) for c in config.categories],
            "schedules": list(config.newsletter.schedules),
            "locales": list(i18n.LOCALES),
        },
        "subscriber": subscriber(config),
        "edition": shown,
        "views": [shown],
        "schedules": list(config.newsletter.schedules),
        "category_titles": [c.title for c in config.categories],
        **_reading_context(config, locale),
    }


def _reading_context(config: Config, locale: str) -> dict[str, Any]:
    """What the reading pages (``web/reading.py``) are given: sample stories in lists."""
    from feedsvc import reading  # reading imports publish, which samples need not load
    from feedsvc.model import Entry, StoryRef
    from feedsvc.store.reading import Story, StoryCard
    from feedsvc.stories.model import SeriesContext, StoryContext

    card = StoryCard(
        1,
        "Hà Tĩnh: trẻ em vùng lũ đến trường",
        "https://example.vn/tin-1.html",
        "xa-hoi",
        "Báo Hà Tĩnh",
        NOW,
        "Sáng nay, học sinh xã Hương Khê trở lại lớp sau lũ.",
        "https://example.vn/anh.jpg",
    )
    cards = (card,)
    first = config.categories[0].id if config.categories else reading.ALL
    this = StoryRef(Entry(1, "xa-hoi", "tin-1", card.title, NOW), "Báo Hà Tĩnh")
    other = StoryRef(
        Entry(2, "vnexpress", "tin-2", "Trẻ em Hương Khê trở lại lớp", NOW), "VnExpress"
    )
    around = StoryContext(  # every block of the story page shows
        series=SeriesContext(1, card.title, 1, ((1, this), (2, other))),
        related=(other,),
        also_reported_by=(other,),
    )
    return {
        "sections": [reading.FrontSection(first, first, cards)],
        "page": reading.StoryList(first, cards, "sample", "sample"),
        "story": Story(card, "<p>Nội dung.</p>", "Phóng viên", NOW, NOW, NOW, (first,)),
        "around": around,
        "filed": [(first, first)],
        "title": first,
        "feed_links": {fmt: f"{config.site.base_url}/feeds/{first}.{fmt}" for fmt in ("rss",)},
        "first": config.site.base_url,
        **reading.helpers(config, locale),
    }
