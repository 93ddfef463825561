"""Digest and confirmation rendering: golden files, dates, subjects, budget, hostile input.

Set UPDATE_GOLDEN=1 to rewrite tests/data/golden/ from the current templates;
read the diff (and open the HTML in a browser) before committing it.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from feedsvc import i18n
from feedsvc.config import Config
from feedsvc.ingest.parse import parse_feed
from feedsvc.model import TOPICS_SECTION, Digest, DigestSection, DigestStory, Entry, StoryRef
from feedsvc.newsletter.render import (
    CONFIRM_URL,
    HTML_BUDGET,
    PREFERENCES_URL,
    RECIPIENT,
    UNSUBSCRIBE_URL,
    RenderedDigest,
    render_confirmation,
    render_digest,
)
from tests.conftest import DATA

GOLDEN = DATA / "golden"
TEMPLATES = Path(__file__).parents[2] / "src" / "feedsvc" / "templates" / "email"
UNTIL = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)  # 07:00 in Hà Tĩnh
NOW = UNTIL + timedelta(minutes=5)
ZONE = "Asia/Ho_Chi_Minh"
CONFIG = Config.model_validate(
    {
        "site": {"title": "Báo Hà Tĩnh — Bản tin", "base_url": "http://127.0.0.1:8080/"},
        "categories": [
            {"id": "tre-em", "title": "Trẻ em"},
            {"id": "xa-hoi", "title": "Xã hội"},
            {"id": "kinh-te", "title": "Kinh tế"},
            {"id": "chinh-tri", "title": "Chính trị"},
        ],
        "newsletter": {
            "from": "Bản tin Hà Tĩnh <bantin@example.vn>",
            "schedules": {"daily": "0 7 * * *", "weekly": "0 7 * * mon"},
        },
        "path": Path(__file__).parent / "config.yaml",  # no templates/ beside it: the package's
    }
)


def entry(id: int, title: str, at: datetime, **fields: Any) -> Entry:
    link = f"https://baohatinh.example.vn/bai-{id}.html"
    defaults: dict[str, Any] = {"link": link, "guid": link, "published": at}
    return Entry(
        id=id,
        source_id="baohatinh-xa-hoi",
        identity=link,
        title=title,
        first_seen=at + timedelta(minutes=3),
        **(defaults | fields),
    )


def golden_digest() -> Digest:
    """Corpus-like stories: an image, a story with no link, one just before midnight."""
    tre_em = entry(
        1,
        "Tăng cường sự lãnh đạo của Đảng đối với công tác chăm sóc, giáo dục và bảo vệ trẻ em "
        "trong tình hình mới",
        datetime(2026, 11, 27, 18, 30, tzinfo=UTC),
        summary="Sáng 19/6, Sở LĐTB&XH tỉnh tổ chức hội nghị triển khai chỉ thị 27-CT/TU của "
        "Ban thường vụ Tỉnh ủy “về tăng cường sự lãnh đạo của Đảng đối với công tác chăm sóc, "
        "giáo dục và bảo vệ trẻ em trong tình hình mới”.",
        image="https://baohatinh.example.vn/img/tang-cuong-su-lanh-d.jpg",
    )
    xa_hoi = (
        entry(
            2,
            "Làm gì để tăng tỷ lệ bao phủ bảo hiểm y tế",
            datetime(2026, 11, 27, 10, 0, tzinfo=UTC),
            summary="Tỷ lệ người dân tham gia bảo hiểm y tế được coi là một trong những nội "
            "dung quan trọng để đánh giá sự phát triển của KT-XH ở khu vực nông thôn.",
            image="https://baohatinh.example.vn/img/lam-gi-de-tang-ty-le.jpg",
        ),
        entry(
            3,
            "Do đâu tỷ lệ người dân tham gia BHYT ở nhiều địa phương giảm?",
            datetime(2026, 11, 27, 16, 59, tzinfo=UTC),
            summary="Nhiều địa phương ghi nhận tỷ lệ tham gia giảm so với cùng kỳ.",
        ),
        entry(
            4,
            "Khánh thành cầu vượt sông Ngàn Phố, nối liền hai bờ Hương Sơn",
            datetime(2026, 11, 27, 9, 15, tzinfo=UTC),
            link=None,
        ),
    )
    kinh_te = entry(
        5,
        "Giá lúa tăng, nông dân “được mùa được giá” <vụ đông> & hè thu",
        datetime(2026, 11, 27, 23, 50, tzinfo=UTC),
        summary="Giá lúa tươi tại ruộng tăng 500–700 đồng/kg so với tuần trước.",
    )
    return Digest(
        sections=(
            DigestSection("tre-em", "Trẻ em", (tre_em,), more=2),
            DigestSection("xa-hoi", "Xã hội", xa_hoi),
            DigestSection("kinh-te", "Kinh tế", (kinh_te,)),
        ),
        since=UNTIL - timedelta(days=1),
        until=UNTIL,
    )


def render(digest: Digest, locale: str = "vi", timezone: str = ZONE) -> RenderedDigest:
    return render_digest(
        digest,
        config=CONFIG,
        locale=locale,
        timezone=timezone,
        now=NOW,
        categories=["tre-em", "xa-hoi", "kinh-te", "chinh-tri"],
        schedule="daily",
    )


class Page(HTMLParser):
    """The parts of an HTML document a mail client acts on: tags, attributes, text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def links(self) -> set[str]:
        return {attrs["href"] for tag, attrs in self.tags if tag == "a" and "href" in attrs}

    def find(self, tag: str) -> list[dict[str, str]]:
        return [attrs for name, attrs in self.tags if name == tag]


@pytest.mark.parametrize("locale", ["vi", "en"])
@pytest.mark.parametrize("part", ["html", "txt"])
@pytest.mark.parametrize("name", ["digest", "digest-stories"])
def test_golden(locale: str, part: str, name: str) -> None:
    """``digest-stories``: a series shown together, "Đọc thêm" and "Cũng đưa tin"."""
    rendered = render(golden_digest() if name == "digest" else story_digest(), locale)
    actual = rendered.html if part == "html" else rendered.text
    path = GOLDEN / f"{name}.{locale}.{part}"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8")


def topics_digest() -> Digest:
    """The golden digest for a reader following a topic: story 3 moved to "Your topics"."""
    base = golden_digest()
    tre_em, xa_hoi, kinh_te = base.sections
    moved = xa_hoi.entries[1]
    topics = DigestSection(TOPICS_SECTION, "", (moved,), more=1)
    rest = replace(xa_hoi, entries=(xa_hoi.entries[0], xa_hoi.entries[2]))
    return replace(base, sections=(topics, tre_em, rest, kinh_te))


@pytest.mark.parametrize("locale", ["vi", "en"])
@pytest.mark.parametrize("part", ["html", "txt"])
def test_golden_with_topics(locale: str, part: str) -> None:
    rendered = render_digest(
        topics_digest(),
        config=CONFIG,
        locale=locale,
        timezone=ZONE,
        now=NOW,
        categories=["tre-em", "xa-hoi", "kinh-te", "chinh-tri"],
        schedule="daily",
        view_url="https://tin.example.vn/digests/daily/0123456789abcdef",
    )
    actual = rendered.html if part == "html" else rendered.text
    path = GOLDEN / f"digest-topics.{locale}.{part}"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("locale", "heading", "subject"),
    [
        ("vi", "Chủ đề bạn theo dõi", "28/11: Chủ đề bạn theo dõi, Trẻ em, Xã hội, … (8 tin mới)"),
        ("en", "Your topics", "28 Nov: Your topics, Trẻ em, Xã hội, … (8 new stories)"),
    ],
)
def test_the_topics_section_comes_first_in_the_readers_language(
    locale: str, heading: str, subject: str
) -> None:
    view = "https://tin.example.vn/digests/daily/0123456789abcdef"
    rendered = render_digest(
        topics_digest(), config=CONFIG, locale=locale, timezone=ZONE, now=NOW, view_url=view
    )
    assert rendered.subject.endswith(subject)
    page = Page(rendered.html)
    headings = [t for t in page.text if t.strip() in (heading, "Trẻ em", "Xã hội", "Kinh tế")]
    assert headings[0] == heading
    assert f"{view}#{TOPICS_SECTION}" in page.links()  # "… and 1 more" opens the edition
    assert rendered.text.index(f"== {heading} ==") < rendered.text.index("== Trẻ em ==")
    assert "_topics" not in rendered.text.split("-- \n")[1]  # the footer names categories only


@pytest.mark.parametrize(
    ("locale", "subject"),
    [
        ("vi", "Bản tin Hà Tĩnh — 28/11: Trẻ em, Xã hội, Kinh tế (7 tin mới)"),
        ("en", "Bản tin Hà Tĩnh — 28 Nov: Trẻ em, Xã hội, Kinh tế (7 new stories)"),
    ],
)
def test_subject_names_date_sections_and_count(locale: str, subject: str) -> None:
    assert render(golden_digest(), locale).subject == subject


def test_subject_singular_and_many_sections() -> None:
    one = Digest(
        sections=(DigestSection("xa-hoi", "Xã hội", golden_digest().sections[1].entries[:1]),),
        since=UNTIL - timedelta(days=1),
        until=UNTIL,
    )
    assert render(one, "en").subject.endswith("28 Nov: Xã hội (1 new story)")
    four = Digest(
        sections=(*golden_digest().sections, DigestSection("chinh-tri", "Chính trị", (), more=1)),
        since=UNTIL,
        until=UNTIL,
    )
    assert render(four).subject.endswith(": Trẻ em, Xã hội, Kinh tế, … (8 tin mới)")


def test_subject_uses_site_title_without_display_name() -> None:
    config = CONFIG.model_copy(
        update={"newsletter": CONFIG.newsletter.model_copy(update={"from_": "bantin@example.vn"})}
    )
    rendered = render_digest(golden_digest(), config=config, locale="vi", timezone=ZONE, now=NOW)
    assert rendered.subject.startswith("Báo Hà Tĩnh — Bản tin — 28/11: ")


def test_dates_in_the_subscribers_language_and_zone() -> None:
    """18:30 UTC on the 27th is already Saturday the 28th in Hà Tĩnh (UTC+7)."""
    vi = render(golden_digest(), "vi")
    assert "Thứ Bảy, 28 tháng 11, 2026 · 01:30" in vi.text
    assert "Thứ Sáu, 27 tháng 11, 2026 · 23:59" in vi.text
    en = render(golden_digest(), "en")
    assert "Saturday, 28 November 2026 · 01:30" in en.text
    utc = render(golden_digest(), "en", timezone="UTC")
    assert "Friday, 27 November 2026 · 18:30" in utc.text
    assert "Friday, 27 November 2026" in utc.html  # the issue date, too


def test_a_publisher_date_after_now_shows_when_we_saw_it() -> None:
    future = replace(entry(9, "Tin từ tương lai", NOW + timedelta(days=3)), first_seen=UNTIL)
    digest = Digest((DigestSection("xa-hoi", "Xã hội", (future,)),), UNTIL, UNTIL)
    assert "Thứ Bảy, 28 tháng 11, 2026 · 07:00" in render(digest).text


def test_html_is_inlined_table_layout_for_phones_and_outlook() -> None:
    html = render(golden_digest()).html
    page = Page(html)
    styles = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert len(styles) == 1
    assert styles[0].strip().startswith("@media")  # only what cannot be inlined stays
    styled = [attrs for _, attrs in page.tags if "class" in attrs]
    assert len(styled) > 20
    assert all(attrs.get("style") for attrs in styled)  # every class was inlined
    container = next(a for a in page.find("table") if "container" in a.get("class", ""))
    assert "max-width: 600px" in container["style"]
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "<!--[if mso]><table" in html  # Outlook, which ignores max-width, gets 600px
    assert page.find("html")[0]["lang"] == "vi"


def test_entries_link_to_their_stories_and_sections_to_more() -> None:
    page = Page(render(golden_digest()).html)
    hrefs = page.links()
    for id in (1, 2, 3, 5):
        assert f"https://baohatinh.example.vn/bai-{id}.html" in hrefs
    assert "https://baohatinh.example.vn/bai-4.html" not in hrefs  # it has no link
    assert "http://127.0.0.1:8080/#feed-tre-em" in hrefs
    images = [img["src"] for img in page.find("img")]
    assert images == [
        "https://baohatinh.example.vn/img/tang-cuong-su-lanh-d.jpg",
        "https://baohatinh.example.vn/img/lam-gi-de-tang-ty-le.jpg",
    ]
    assert all(img["alt"] == "" and img["width"] == "96" for img in page.find("img"))


def test_feed_text_is_escaped_in_html_and_verbatim_in_text() -> None:
    rendered = render(golden_digest())
    assert "“được mùa được giá” &lt;vụ đông&gt; &amp; hè thu" in rendered.html
    assert "“được mùa được giá” <vụ đông> & hè thu" in rendered.text
    assert "<vụ đông>" not in rendered.html


@pytest.mark.parametrize("locale", ["vi", "en"])
def test_footer_says_why_and_offers_preferences_and_unsubscribe(locale: str) -> None:
    rendered = render(golden_digest(), locale)
    reason = {
        "vi": "Bạn nhận bản tin hằng ngày về Trẻ em, Xã hội, Kinh tế, Chính trị vì đã đăng ký "
        "tại Báo Hà Tĩnh — Bản tin.",
        "en": "You get the daily digest of Trẻ em, Xã hội, Kinh tế, Chính trị because you "
        "subscribed at Báo Hà Tĩnh — Bản tin.",
    }[locale]
    assert reason in rendered.text
    assert reason in rendered.html
    hrefs = Page(rendered.html).links()
    assert UNSUBSCRIBE_URL in hrefs
    assert PREFERENCES_URL in hrefs
    for part in (rendered.html, rendered.text):
        assert RECIPIENT in part
        assert CONFIRM_URL not in part


def test_one_render_serves_every_subscriber_of_a_variant() -> None:
    """Nothing in a render depends on the recipient: two renders are identical."""
    assert render(golden_digest()) == render(golden_digest())


def test_feed_text_cannot_pose_as_a_placeholder() -> None:
    """A title holding ``@@UNSUBSCRIBE_URL@@`` must not become a subscriber's link."""
    sneaky = entry(7, f"Bấm {UNSUBSCRIBE_URL}", UNTIL, link=f"https://x.example/{RECIPIENT}")
    section = DigestSection("xa-hoi", f"Xã hội {PREFERENCES_URL}", (sneaky,))
    rendered = render(Digest((section,), UNTIL, UNTIL))
    for part in (rendered.html, rendered.text):
        assert part.count(UNSUBSCRIBE_URL) == 1  # the footer's own
        assert part.count(PREFERENCES_URL) == 1
        assert part.count(RECIPIENT) == 1
    assert "Bấm @\u2060@UNSUBSCRIBE_URL@\u2060@" in rendered.text


def long_digest(count: int, sections: int = 4) -> Digest:
    title = "Tăng cường sự lãnh đạo của Đảng đối với công tác chăm sóc, giáo dục và bảo vệ trẻ em "
    summary = "Sáng 19/6, Sở LĐTB&XH tỉnh tổ chức hội nghị triển khai chỉ thị 27-CT/TU. " * 5
    entries = [
        entry(
            i,
            f"{title} ({i})" * 2,
            UNTIL - timedelta(minutes=i),
            summary=summary,
            image=f"https://baohatinh.example.vn/img/anh-minh-hoa-{i}.jpg",
        )
        for i in range(count)
    ]
    sizes = [count * share // 10 for share in (4, 3, 2, 1)][:sections]
    sizes[0] += count - sum(sizes)
    starts = [sum(sizes[:k]) for k in range(len(sizes))]
    return Digest(
        sections=tuple(
            DigestSection(f"c{k}", f"Chuyên mục {k}", tuple(entries[start : start + size]))
            for k, (start, size) in enumerate(zip(starts, sizes, strict=True))
        ),
        since=UNTIL - timedelta(days=1),
        until=UNTIL,
    )


def test_200_long_entries_stay_under_gmail_clipping() -> None:
    rendered = render(long_digest(200))
    assert len(rendered.html.encode()) <= HTML_BUDGET
    page = Page(rendered.html)
    shown = [a["href"] for a in page.find("a") if a.get("class") == "title"]
    more = re.findall(r"… và (\d+) tin khác", rendered.html)
    assert len(shown) + sum(int(n) for n in more) == 200  # nothing silently lost
    assert len(shown) > 40  # the budget is used, not given up
    assert len(more) == 4
    assert rendered.text.count("\n* ") == len(shown)  # the text part has the same content
    assert "(200 tin mới)" in rendered.subject


def test_trimming_takes_from_the_largest_sections_first() -> None:
    rendered = render(long_digest(200))
    counts = [
        len(re.findall(r'class="title"', chunk))
        for chunk in rendered.html.split('class="section-title"')[1:]
    ]
    assert max(counts) - min(counts) <= 1  # 80/60/40/20 levelled
    assert counts[0] >= counts[-1]  # ties go to the earlier (config-order) section


def test_a_small_digest_is_not_trimmed() -> None:
    rendered = render(long_digest(20))
    assert len(re.findall(r'class="title"', rendered.html)) == 20
    assert "tin khác" not in rendered.html


def hostile_entries() -> list[Entry]:
    body = (DATA / "feeds" / "hostile-markup.rss").read_bytes()
    feed = parse_feed(
        body,
        url="https://baohatinh.example.vn/xss",
        headers={"content-type": "application/rss+xml"},
        timezone=ZONE,
        now=NOW,
    )
    fields = ("identity", "title", "link", "guid", "summary", "content", "image", "published")
    parsed = [
        Entry(id=i, source_id="xss", first_seen=UNTIL, **{f: getattr(e, f) for f in fields})
        for i, e in enumerate(feed.entries)
    ]
    raw = entry(
        90,
        'Tin <script>alert(1)</script> <img src=x onerror="alert(1)">\r\nBcc: victim@example.com',
        UNTIL,
        link="javascript:alert(1)",
        image="javascript:alert(2)",
        summary='<a href="javascript:alert(3)" onclick="steal()">liên kết</a>',
    )
    return [*parsed, raw]


def assert_inert(html: str) -> None:
    page = Page(html)
    assert not page.find("script")
    assert not page.find("iframe")
    for _, attrs in page.tags:
        assert not [name for name in attrs if name.startswith("on")], attrs
        assert not any("javascript:" in value.lower() for value in attrs.values()), attrs
    assert "<script" not in html.lower()
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", html, re.I)


@pytest.mark.parametrize("locale", ["vi", "en"])
def test_hostile_entries_render_inert(locale: str) -> None:
    entries = hostile_entries()
    digest = Digest((DigestSection("xa-hoi", "Xã hội", tuple(entries)),), UNTIL, UNTIL)
    rendered = render(digest, locale)
    assert_inert(rendered.html)
    parsed_only = Digest((DigestSection("xa-hoi", "Xã hội", tuple(entries[:-1])),), UNTIL, UNTIL)
    text = render(parsed_only, locale).text
    assert "javascript:" not in text
    assert "Tin <script>alert(1)</script> nóng" in text  # plain text, shown as written
    assert "Tiêu đề Bcc: victim@example.com" in text  # a title, on its title's line
    assert "\nBcc:" not in rendered.text
    assert "\r" not in rendered.text


def test_confirmation_in_both_languages() -> None:
    vi = render_confirmation(config=CONFIG, locale="vi", categories=["tre-em"], schedule="weekly")
    assert vi.subject == "Xác nhận đăng ký nhận tin từ Bản tin Hà Tĩnh"
    assert "Chuyên mục: Trẻ em" in vi.text
    assert "Tần suất: hằng tuần" in vi.text
    assert f"Xác nhận đăng ký: {CONFIRM_URL}" in vi.text
    buttons = [a for a in Page(vi.html).find("a") if a["href"] == CONFIRM_URL]
    assert len(buttons) == 2  # the button, and the address written out
    assert RECIPIENT in vi.html
    assert UNSUBSCRIBE_URL not in vi.html
    en = render_confirmation(config=CONFIG, locale="en")
    assert en.subject == "Confirm your subscription to Bản tin Hà Tĩnh"
    assert "Someone, probably you, asked to receive Bản tin Hà Tĩnh at @@RECIPIENT@@." in en.text
    assert_inert(en.html)


def test_every_template_string_has_a_vietnamese_translation() -> None:
    keys = set()
    for path in TEMPLATES.iterdir():
        keys |= set(re.findall(r'_\("((?:[^"\\]|\\.)*)"\)', path.read_text(encoding="utf-8")))
    keys |= {"{n} new story", "{n} new stories", "daily", "weekly", "monthly"}
    assert keys
    assert sorted(keys - set(i18n.VI)) == []


def test_unknown_locale_falls_back_to_the_site_language() -> None:
    assert render(golden_digest(), "fr").subject == render(golden_digest(), "vi").subject


# -- hidden text and contrast (SpamAssassin's HTML_FONT_LOW_CONTRAST) --------------------

_NAMED = {"white": "#ffffff", "black": "#000000", "red": "#ff0000", "gray": "#808080"}
_VOID = {"area", "base", "br", "col", "hr", "img", "input", "link", "meta", "source", "wbr"}


def _rgb(value: str) -> tuple[int, int, int] | None:
    value = _NAMED.get(value.strip().lower(), value.strip().lower())
    if match := re.fullmatch(r"rgb\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\)", value):
        r, g, b = (min(255, int(n)) for n in match.groups())
        return r, g, b
    if re.fullmatch(r"#[0-9a-f]{3}", value):
        value = "#" + "".join(c * 2 for c in value[1:])
    if re.fullmatch(r"#[0-9a-f]{6}", value):
        return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)
    return None


def contrast(fg: tuple[int, int, int], bg: tuple[int, int, int]) -> float:
    """SpamAssassin's distance (Mail::SpamAssassin::HTML): under 12 is low contrast."""
    r, g, b = (x - y for x, y in zip(fg, bg, strict=True))
    return float(((0.2126 * r) ** 2 + (0.7152 * g) ** 2 + (0.0722 * b) ** 2) ** 0.5)


class Colours(HTMLParser):
    """Each text's colour and background, as SpamAssassin sees them and as a browser does.

    SpamAssassin reads ``color``/``background-color`` only in the style of span,
    p and div, ``bgcolor`` on body and table cells, and tests contrast before it
    looks at ``display: none``: hidden text is tested too. A browser takes every
    element's style, ``background`` included.
    """

    _SA_STYLED = {"span", "p", "div"}
    _SA_BGCOLOR = {"body", "table", "tr", "td", "th", "marquee"}

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        white, black = (255, 255, 255), (0, 0, 0)
        self.stack: list[dict[str, Any]] = [
            {"tag": "", "sa": (black, white), "css": (black, white), "hidden": False, "class": ""}
        ]
        self.texts: list[dict[str, Any]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        top = self.stack[-1]
        (sa_fg, sa_bg), (fg, bg) = top["sa"], top["css"]
        style = dict(
            (name.strip().lower(), value.strip())
            for name, _, value in (d.partition(":") for d in found.get("style", "").split(";"))
            if value
        )
        if (colour := _rgb(found.get("bgcolor", ""))) is not None:
            bg = colour
            if tag in self._SA_BGCOLOR:
                sa_bg = colour
        if (colour := _rgb(style.get("color", ""))) is not None:
            fg = colour
            sa_fg = colour if tag in self._SA_STYLED else sa_fg
        for name in ("background-color", "background"):
            if (colour := _rgb(style.get(name, "").split(" ")[0])) is not None:
                bg = colour
                if tag in self._SA_STYLED and name == "background-color":
                    sa_bg = colour
        hidden = top["hidden"] or style.get("display", "").startswith("none")
        entry = {"tag": tag, "sa": (sa_fg, sa_bg), "css": (fg, bg), "hidden": hidden}
        entry["class"] = found.get("class", "") or top["class"]
        if tag not in _VOID:
            self.stack.append(entry)

    def handle_endtag(self, tag: str) -> None:
        tags = [item["tag"] for item in self.stack]
        if tag in tags[1:]:
            del self.stack[len(tags) - 1 - tags[::-1].index(tag) :]

    def handle_data(self, data: str) -> None:
        top = self.stack[-1]
        if data.strip() and "title" not in [item["tag"] for item in self.stack]:
            self.texts.append({"text": data.strip(), **top})

    def low_contrast(self) -> list[str]:
        return [
            f"{t['text'][:40]!r} ({t['class'] or t['tag']})"
            for t in self.texts
            if contrast(*t["sa"]) < 12 or contrast(*t["css"]) < 12
        ]


def _emails() -> list[tuple[str, str]]:
    confirmation = render_confirmation(
        config=CONFIG, locale="vi", categories=["tre-em"], schedule="daily"
    )
    digests = [
        (f"digest {locale}", render(golden_digest(), locale).html) for locale in ("vi", "en")
    ]
    return [*digests, ("confirmation", confirmation.html)]


@pytest.mark.parametrize(("name", "html"), _emails(), ids=lambda v: v if " " in v else None)
def test_no_text_is_coloured_like_its_background(name: str, html: str) -> None:
    """SpamAssassin scores HTML_FONT_LOW_CONTRAST for any such text, hidden or not."""
    assert Colours(html).low_contrast() == [], name


def test_the_preheader_is_hidden_without_a_colour() -> None:
    rendered = render(golden_digest())
    page = Colours(rendered.html)
    preheader = [t for t in page.texts if "preheader" in t["class"]]
    assert [t["text"] for t in preheader] == [
        "Tăng cường sự lãnh đạo của Đảng đối với công tác chăm sóc, giáo dục và bảo vệ trẻ em "
        "trong tình hình mới · Làm gì để tăng tỷ lệ bao phủ bảo hiểm y tế…"
    ]
    assert preheader[0]["hidden"]
    [element] = [
        attrs for _, attrs in Page(rendered.html).tags if attrs.get("class") == "preheader"
    ]
    declarations = {d.split(":")[0].strip() for d in element["style"].split(";") if d.strip()}
    assert {"display", "visibility", "opacity", "max-height", "overflow", "mso-hide"} <= (
        declarations
    )
    assert "color" not in declarations  # hidden by layout, never by a colour


# Stories: a series shown together, "Đọc thêm" and "Cũng đưa tin" (newsletter.select).


def story_digest() -> Digest:
    """A series of two parts together in part order, related stories, other outlets."""
    at = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    bai1 = entry(
        11,
        "Bài 1: Quyết tâm về đích trước thời hạn của cả nước",
        at,
        summary="Hà Tĩnh đặt mục tiêu hoàn thành xóa nhà tạm, nhà dột nát trước 30/8.",
    )
    bai2 = entry(
        12,
        "Bài 2: Huy động tổng lực, dồn sức trên những “đại công trường”",
        at + timedelta(hours=6),
        summary="Khắp các địa phương, lực lượng vũ trang, đoàn viên góp sức dựng nhà.",
    )
    fire = entry(
        13,
        "Cháy xưởng gỗ ở Thạch Hà, thiệt hại hàng tỷ đồng",
        at + timedelta(hours=2),
        summary="Ngọn lửa bùng phát lúc rạng sáng, thiêu rụi toàn bộ nhà xưởng.",
    )
    other = {
        "tt": entry(21, "Cháy lớn tại xưởng gỗ Hà Tĩnh", at + timedelta(hours=3)),
        "tn": entry(22, "Hà Tĩnh: cháy xưởng chế biến gỗ", at + timedelta(hours=4), link=None),
        "r1": entry(31, "Hà Tĩnh khởi công 500 căn nhà cho hộ nghèo", at - timedelta(days=3)),
        "r2": entry(32, "Nghệ An hỗ trợ xóa nhà tạm <cho> hộ khó khăn", at - timedelta(days=9)),
        "r3": entry(33, "Cháy rừng ở Hương Khê được khống chế", at - timedelta(days=2)),
    }
    stories = {
        11: DigestStory(
            part=1,
            parts=(1, 2),
            related=(StoryRef(other["r1"], "Báo Hà Tĩnh"), StoryRef(other["r2"], "Báo Nghệ An")),
        ),
        12: DigestStory(part=2, continues=11),
        13: DigestStory(
            related=(StoryRef(other["r3"], "VnExpress"),),
            also_reported_by=(
                StoryRef(other["tt"], "Tuổi Trẻ"),
                StoryRef(other["tn"], "Thanh Niên"),
            ),
        ),
    }
    return Digest(
        sections=(DigestSection("xa-hoi", "Xã hội", (bai1, bai2, fire)),),
        since=UNTIL - timedelta(days=1),
        until=UNTIL,
        stories=stories,
    )


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        ("vi", ("Bài 1 → Bài 2", "Đọc thêm", "Cũng đưa tin")),
        ("en", ("Part 1 → Part 2", "Read more", "Also reported by")),
    ],
)
def test_series_related_and_other_outlets_show_in_both_parts(
    locale: str, words: tuple[str, str, str]
) -> None:
    rendered = render(story_digest(), locale)
    for text in (rendered.text, rendered.html):
        for word in words:
            assert text.count(word) == (2 if word in ("Đọc thêm", "Read more") else 1), word
        # The series' parts in part order, the second under the first.
        assert text.index("Quyết tâm về đích") < text.index("Huy động tổng lực")
        assert text.index("Huy động tổng lực") < text.index("Cháy xưởng gỗ ở Thạch Hà")
    page = Page(rendered.html)
    assert "https://baohatinh.example.vn/bai-21.html" in page.links()  # Tuổi Trẻ's report
    assert "https://baohatinh.example.vn/bai-31.html" in page.links()  # a related story
    assert "Nghệ An hỗ trợ xóa nhà tạm &lt;cho&gt; hộ khó khăn" in rendered.html
    assert "\n  → Bài 2: Huy động tổng lực" in rendered.text
