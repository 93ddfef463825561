"""The public archive of sent editions: their pages' content and the Atom feed of them.

Pure: editions, the entries they name and the configuration in; page views and
feed bytes out. An edition page shows what every reader of that edition got,
never anything personal (no address, no links with tokens). An edition with a
"Your topics" section shows its stories, never the topics, and is left out of
the archive's lists: only its readers' "view in browser" links lead to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date
from feedgen.feed import FeedGenerator

from feedsvc import i18n
from feedsvc.config import Config
from feedsvc.model import TOPICS_SECTION, Edition, Entry

_BABEL = {"vi": "vi", "en": "en_GB"}


@dataclass(frozen=True, slots=True)
class EditionView:
    """An edition ready for its page or its feed entry."""

    edition: Edition
    url: str
    title: str  # "Bản tin hằng ngày — Thứ Tư, 2 tháng 12, 2026"
    sections: tuple[tuple[str, str, tuple[Entry, ...], int], ...]  # id, title, entries, more


def edition_url(config: Config, edition: Edition) -> str:
    """Where "view in browser" leads: ``/digests/{schedule}/{edition id}``."""
    return f"{config.site.base_url.rstrip('/')}/digests/{edition.schedule}/{edition.id}"


def archive_url(config: Config, schedule: str | None = None) -> str:
    base = f"{config.site.base_url.rstrip('/')}/digests/"
    return f"{base}{schedule}.atom" if schedule else base


def view(config: Config, edition: Edition, entries: Mapping[int, Entry]) -> EditionView:
    """The edition with its entries in order (those purged since are left out)."""
    titles = {category.id: category.title for category in config.categories}
    titles[TOPICS_SECTION] = i18n.translator(edition.locale)("Your topics")
    sections = tuple(
        (
            section.category_id,
            titles.get(section.category_id, section.category_id),
            tuple(entries[i] for i in section.entry_ids if i in entries),
            section.more,
        )
        for section in edition.sections
    )
    return EditionView(edition, edition_url(config, edition), title(config, edition), sections)


def title(config: Config, edition: Edition) -> str:
    _ = i18n.translator(edition.locale)
    zone = ZoneInfo(config.site.timezone)
    local = edition.period.astimezone(zone)
    day = format_date(local, "full", locale=_BABEL[edition.locale]) + f", {local:%H:%M}"
    name = _("{schedule} newsletter").format(
        schedule=i18n.schedule_title(config, edition.schedule, edition.locale)
    )
    return f"{name[:1].upper()}{name[1:]} — {day}"


def atom(config: Config, schedule: str, views: Sequence[EditionView], now: datetime) -> bytes:
    """The Atom feed of ``schedule``'s sent editions, newest first (W3C-valid)."""
    locale = config.site.language
    _ = i18n.translator(locale)
    fg = FeedGenerator()
    fg.id(archive_url(config, schedule))
    fg.title(f"{config.site.title} — {i18n.schedule_title(config, schedule, locale)}")
    fg.subtitle(_("Past editions of the newsletter"))
    fg.language(locale)
    fg.author(name=config.site.title)
    fg.link(href=archive_url(config, schedule), rel="self", type="application/atom+xml")
    fg.link(href=archive_url(config), rel="alternate", type="text/html")
    fg.updated(max((v.edition.period for v in views), default=now))
    for item in reversed(views):  # feedgen puts the last added first
        entry = fg.add_entry()
        entry.id(item.url)
        entry.title(item.title)
        entry.link(href=item.url, rel="alternate", type="text/html")
        entry.updated(item.edition.period)
        entry.published(item.edition.period)
        lines = [
            f"{section_title}: " + "; ".join(e.title for e in shown)
            for _, section_title, shown, _more in item.sections
        ]
        entry.summary(" · ".join(lines) or item.title)
    return bytes(fg.atom_str(pretty=False))
