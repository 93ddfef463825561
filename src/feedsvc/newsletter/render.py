"""Digest and confirmation emails as HTML (CSS inlined) and plain text.

A render depends only on (categories, schedule, locale, time zone, content), never
on the recipient: each subscriber's links and address appear as the fixed ASCII
placeholders below, which ``message.MessageTemplate.build`` fills in per message.
So one render serves every subscriber of a variant, and rendering stays off the
per-message path.

Feed text reaches the templates only as escaped plain text (titles, summaries)
and http(s) URLs; entry HTML is never embedded, so nothing executable can get in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import css_inline
from babel import Locale
from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_decimal
from jinja2 import Template

from feedsvc import i18n, templates_loader
from feedsvc._text import clean_line, shorten
from feedsvc.config import Config
from feedsvc.model import TOPICS_SECTION, Digest, DigestSection, DigestStory, Entry, StoryRef

UNSUBSCRIBE_URL = "@@UNSUBSCRIBE_URL@@"
PREFERENCES_URL = "@@PREFERENCES_URL@@"
RECIPIENT = "@@RECIPIENT@@"
CONFIRM_URL = "@@CONFIRM_URL@@"
PLACEHOLDERS = (UNSUBSCRIBE_URL, PREFERENCES_URL, RECIPIENT, CONFIRM_URL)

# Gmail clips a message whose HTML passes 102 KB; keep a margin for the links
# substituted later and for the headers.
HTML_BUDGET = 90_000
SUMMARY_CHARS = 220
SUBJECT_SECTIONS = 3  # category titles named in a subject before "…"
# "en" reads as British English: "Saturday, 28 November 2026", as the newsroom asked.
_BABEL_LOCALES = {"vi": "vi", "en": "en_GB"}
_SHORT_DATE = {"vi": "dd/MM", "en": "d MMM"}
_INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


@dataclass(frozen=True, slots=True)
class RenderedDigest:
    """One variant of an email: the same content as a subject, HTML and plain text."""

    subject: str
    html: str
    text: str


@dataclass(frozen=True, slots=True)
class _LinkView:
    title: str
    url: str | None
    source: str


@dataclass(frozen=True, slots=True)
class _StoryView:
    """An entry's story decorations (templates/email/_story.*): its place in a series
    shown together, its related stories, the other outlets that reported it."""

    part: str  # "Bài 2", when the entry is a part of a series shown together
    series: str  # on the first part: "Bài 1 → Bài 2"
    continues: bool  # a later part, shown under the first
    related: tuple[_LinkView, ...]
    also_reported_by: tuple[_LinkView, ...]


@dataclass(frozen=True, slots=True)
class _EntryView:
    title: str
    url: str | None
    date: str
    summary: str
    image: str | None
    story: _StoryView | None = None


@dataclass(frozen=True, slots=True)
class _SectionView:
    id: str
    title: str
    entries: tuple[_EntryView, ...]
    more: int
    more_url: str


class _Words:
    """Everything language- and zone-dependent: strings, dates, counts."""

    def __init__(self, config: Config, locale: str, timezone: str) -> None:
        self.code = locale if locale in i18n.LOCALES else config.site.language
        self.babel = Locale.parse(_BABEL_LOCALES[self.code])
        self.zone = ZoneInfo(timezone)
        self.gettext = i18n.translator(self.code)

    def date(self, moment: datetime) -> str:
        return format_date(moment.astimezone(self.zone), format="full", locale=self.babel)

    def date_time(self, moment: datetime) -> str:
        local = moment.astimezone(self.zone)
        time = format_time(local, format="short", locale=self.babel)
        return f"{self.date(local)} · {time}"

    def short_date(self, moment: datetime) -> str:
        pattern = _SHORT_DATE[self.code]
        return format_datetime(moment, pattern, tzinfo=self.zone, locale=self.babel)

    def number(self, n: int) -> str:
        return str(format_decimal(n, locale=self.babel))

    def count(self, key_one: str, key_many: str, n: int) -> str:
        return self.gettext(key_one if n == 1 else key_many).format(n=self.number(n))


def render_digest(
    digest: Digest,
    *,
    config: Config,
    locale: str,
    timezone: str,
    now: datetime,
    categories: Sequence[str] | None = None,
    schedule: str | None = None,
    view_url: str | None = None,
) -> RenderedDigest:
    """Render one digest variant, trimmed to fit Gmail's clipping limit.

    Args:
        digest: the sections to show, in order.
        locale: ``vi`` or ``en``; anything else falls back to ``site.language``.
        timezone: the subscriber's IANA zone: every date is shown in it.
        now: the render time; a publisher date after it is not believed.
        categories: the subscriber's category ids, named in the footer
            (default: the digest's sections).
        schedule: the subscriber's schedule name, named in the footer.
        view_url: the edition's web page ("view in your browser"): the first link of
            the email, and where "… and N more" leads.

    Returns:
        Subject, HTML and text with :data:`PLACEHOLDERS` for the recipient's parts.
        When the HTML would pass :data:`HTML_BUDGET`, entries are dropped from the
        end of the largest sections first and counted in their "… and N more" line.
    """
    words = _Words(config, locale, timezone)
    ids = (
        list(categories)
        if categories is not None
        else [s.category_id for s in digest.sections if s.category_id != TOPICS_SECTION]
    )
    base = _base_url(config)
    sections = tuple(
        _section_view(s, words, base, now, view_url, digest.stories) for s in digest.sections
    )
    context = _common_context(config, words) | {
        "view_url": _web_url(view_url),
        "subject": _subject(digest, config, words),
        "issue_date": words.date(digest.until),
        "preheader": shorten(" · ".join(e.title for s in sections for e in s.entries[:2]), 150),
        "reason": _reason(config, words, ids, schedule),
        "intro": i18n.schedule_intro(config, schedule, words.code) if schedule else None,
    }
    sections, html = _fit(
        sections, lambda shown: _html(config, "email/digest.html", context, shown)
    )
    return RenderedDigest(
        subject=context["subject"],
        html=html,
        text=_template(config, "email/digest.txt").render(context, sections=sections),
    )


def render_confirmation(
    *,
    config: Config,
    locale: str,
    categories: Sequence[str] = (),
    schedule: str | None = None,
) -> RenderedDigest:
    """Render the double opt-in email: a button to :data:`CONFIRM_URL`.

    It names what was asked for (categories, schedule) and the address as
    :data:`RECIPIENT`, so that someone signed up by a stranger knows to ignore it.
    """
    words = _Words(config, locale, config.site.timezone)
    name = _sender_name(config)
    context = _common_context(config, words) | {
        "subject": words.gettext("Confirm your subscription to {name}").format(name=name),
        "name": name,
        "category_titles": ", ".join(_category_titles(config, categories)),
        "schedule_name": i18n.schedule_title(config, schedule, words.code) if schedule else "",
    }
    return RenderedDigest(
        subject=context["subject"],
        html=_html(config, "email/confirm.html", context, ()),
        text=_template(config, "email/confirm.txt").render(context),
    )


def _subject(digest: Digest, config: Config, words: _Words) -> str:
    """``Bản tin Hà Tĩnh — 28/11: Trẻ em, Xã hội (12 tin mới)``, on one line."""
    titles = [_section_title(section, words) for section in digest.sections]
    named = ", ".join(titles[:SUBJECT_SECTIONS]) + (", …" if len(titles) > SUBJECT_SECTIONS else "")
    count = words.count("{n} new story", "{n} new stories", digest.count)
    date = words.short_date(digest.until)
    return clean_line(f"{_sender_name(config)} — {date}: {named} ({count})")


def _common_context(config: Config, words: _Words) -> dict[str, Any]:
    return {
        "_": words.gettext,
        "number": words.number,
        "lang": words.code,
        "site_title": _neutral(clean_line(config.site.title)),
        "logo_url": _web_url(config.site.logo_url),
        "base_url": _base_url(config),
        "unsubscribe_url": UNSUBSCRIBE_URL,
        "preferences_url": PREFERENCES_URL,
        "recipient": RECIPIENT,
        "confirm_url": CONFIRM_URL,
    }


def _reason(config: Config, words: _Words, ids: Sequence[str], schedule: str | None) -> str:
    """Why this person gets this email, naming their categories and schedule."""
    site, named = _neutral(clean_line(config.site.title)), ", ".join(_category_titles(config, ids))
    if schedule:
        key = "You get the {schedule} digest of {categories} because you subscribed at {site}."
        return words.gettext(key).format(
            schedule=i18n.schedule_title(config, schedule, words.code),
            categories=named,
            site=site,
        )
    key = "You get news of {categories} because you subscribed at {site}."
    return words.gettext(key).format(categories=named, site=site)


def _section_view(
    section: DigestSection,
    words: _Words,
    base: str,
    now: datetime,
    view_url: str | None,
    stories: Mapping[int, DigestStory],
) -> _SectionView:
    # "… and N more" opens the page that lists them: the edition's own section.
    page = (
        f"{view_url}#{section.category_id}" if view_url else f"{base}/#feed-{section.category_id}"
    )
    return _SectionView(
        id=section.category_id,
        title=_section_title(section, words),
        entries=tuple(
            _entry_view(entry, words, now, stories.get(entry.id)) for entry in section.entries
        ),
        more=section.more,
        more_url=page,
    )


def _section_title(section: DigestSection, words: _Words) -> str:
    """A category's title; the topics section's in the reader's language."""
    if section.category_id == TOPICS_SECTION:
        return words.gettext("Your topics")
    return _neutral(section.title)


def _entry_view(
    entry: Entry, words: _Words, now: datetime, story: DigestStory | None = None
) -> _EntryView:
    # A publisher date after the render time is a wrong clock: show when we saw it.
    moment = entry.date if entry.date <= now else entry.first_seen
    return _EntryView(
        title=_neutral(clean_line(entry.title)),
        url=_web_url(entry.link),
        date=words.date_time(moment),
        summary=_neutral(shorten(clean_line(entry.summary), SUMMARY_CHARS)),
        image=_web_url(entry.image),
        story=_story_view(story, words) if story is not None else None,
    )


def _story_view(story: DigestStory, words: _Words) -> _StoryView:
    def part(n: int) -> str:
        return words.gettext("Part {n}").format(n=words.number(n))

    return _StoryView(
        part=part(story.part)
        if story.part is not None and (story.parts or story.continues)
        else "",
        series=" → ".join(part(n) for n in story.parts),
        continues=story.continues is not None,
        related=tuple(_link_view(ref) for ref in story.related),
        also_reported_by=tuple(_link_view(ref) for ref in story.also_reported_by),
    )


def _link_view(ref: StoryRef) -> _LinkView:
    title = clean_line(ref.entry.title)
    return _LinkView(
        title=_neutral(title),
        url=_web_url(ref.entry.link),
        source=_neutral(clean_line(ref.source) or ref.entry.source_id),
    )


def _fit(
    sections: tuple[_SectionView, ...], render: Callable[[tuple[_SectionView, ...]], str]
) -> tuple[tuple[_SectionView, ...], str]:
    """Drop entries until the rendered HTML fits :data:`HTML_BUDGET` bytes.

    Each round estimates how many entries the excess is worth from the average
    entry's size, so a 200-entry digest fits in two or three renders rather
    than one render per dropped entry. Returns the sections kept and their HTML.
    """
    while True:
        html = render(sections)
        size = len(html.encode())
        shown = sum(len(section.entries) for section in sections)
        if size <= HTML_BUDGET or shown == 0:
            return sections, html
        drop = max(1, -(-(size - HTML_BUDGET) * shown // size))  # ceiling division
        sections = _trim(sections, min(drop, shown))


def _trim(sections: tuple[_SectionView, ...], drop: int) -> tuple[_SectionView, ...]:
    """Take ``drop`` entries off the ends of the largest sections (ties: the later one).

    The largest sections lose first, so every category keeps some stories and
    the first categories (config order) keep the most.
    """
    keep = [len(section.entries) for section in sections]
    for _ in range(drop):
        index = max(range(len(keep)), key=lambda i: (keep[i], i))
        keep[index] -= 1
    return tuple(
        replace(s, entries=s.entries[:n], more=s.more + len(s.entries) - n)
        for s, n in zip(sections, keep, strict=True)
    )


def _html(
    config: Config, name: str, context: dict[str, Any], sections: tuple[_SectionView, ...]
) -> str:
    """Render an HTML template and inline its ``<style>`` into each element."""
    return str(_INLINER.inline(_template(config, name).render(context, sections=sections)))


def _template(config: Config, name: str) -> Template:
    return templates_loader.environment(config, "email").get_template(name)


def _category_titles(config: Config, ids: Sequence[str]) -> list[str]:
    titles = {category.id: category.title for category in config.categories}
    return [_neutral(titles.get(category_id, category_id)) for category_id in ids]


def _sender_name(config: Config) -> str:
    """The display name of ``newsletter.from``, else the site title."""
    name, _ = parseaddr(config.newsletter.from_)
    return _neutral(clean_line(name or config.site.title))


def _base_url(config: Config) -> str:
    return config.site.base_url.rstrip("/")


def _web_url(url: str | None) -> str | None:
    """``url`` if it is an absolute http(s) URL, else None: no ``javascript:`` links."""
    if not url:
        return None
    url = clean_line(url)
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or " " in url:
        return None
    return url.replace("@@", "%40%40")


def _neutral(text: str) -> str:
    """Feed text that cannot pass for a placeholder (a word joiner splits any ``@@``)."""
    return text.replace("@@", "@\u2060@")
