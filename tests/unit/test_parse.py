"""parse_feed: every sample feed against its NAME.expected.json, then behaviours by name."""

from __future__ import annotations

import html
import json
import pickle
import re
import tracemalloc
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from feedsvc.errors import ParseError
from feedsvc.ingest import _fields
from feedsvc.ingest import parse as parse_module
from feedsvc.ingest.identity import FINGERPRINT_PREFIX
from feedsvc.ingest.parse import parse_feed
from feedsvc.model import Enclosure, ParsedEntry, ParsedFeed
from feedsvc.stories.exact import normalize_link

FEEDS = Path(__file__).parent.parent / "data" / "feeds"
NOW = datetime(2026, 11, 28, tzinfo=UTC)  # after every date in the corpus
TZ = "Asia/Ho_Chi_Minh"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".atom": "application/atom+xml",
    ".rdf": "application/rdf+xml",
}
CORPUS = sorted(p for p in FEEDS.iterdir() if p.suffix not in (".json", ".md"))
EXECUTABLE = re.compile(
    r"<\s*(script|style|iframe|object|embed|form)|\son\w+\s*=|javascript:|data:", re.I
)


def parse_file(name: str | Path, **overrides: Any) -> ParsedFeed:
    path = FEEDS / name
    arguments: dict[str, Any] = {
        "url": f"https://baohatinh.example.vn/rss/{path.stem}",
        "headers": {"Content-Type": CONTENT_TYPES.get(path.suffix, "application/rss+xml")},
        "timezone": TZ,
        "now": NOW,
    }
    return parse_feed(path.read_bytes(), **(arguments | overrides))


def parse_text(document: str, **overrides: Any) -> ParsedFeed:
    arguments: dict[str, Any] = {
        "url": "https://baohatinh.example.vn/rss/test",
        "headers": {"Content-Type": "application/rss+xml; charset=utf-8"},
        "timezone": TZ,
        "now": NOW,
    }
    return parse_feed(document.encode(), **(arguments | overrides))


def rss(items: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
        'xmlns:media="http://search.yahoo.com/mrss/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Thử</title>'
        f"<link>https://baohatinh.example.vn/</link>{items}</channel></rss>"
    )


def by_identity(feed: ParsedFeed) -> dict[str, ParsedEntry]:
    return {e.identity: e for e in feed.entries}


# -- the corpus, as data ------------------------------------------------------------


def test_every_sample_feed_has_expectations() -> None:
    assert len(CORPUS) == 22
    missing = [p.name for p in CORPUS if not p.with_name(p.stem + ".expected.json").exists()]
    assert missing == []


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_sample_feed_parses_as_expected(path: Path) -> None:
    expected = json.loads(path.with_name(path.stem + ".expected.json").read_text("utf-8"))
    if "error_contains" in expected:
        with pytest.raises(ParseError, match=re.escape(expected["error_contains"])):
            parse_file(path.name)
        return
    feed = parse_file(path.name)
    assert_feed(feed, expected["feed"])
    assert len(feed.entries) == len(expected["entries"])
    for entry, wanted in zip(feed.entries, expected["entries"], strict=True):
        assert_entry(entry, wanted)
        assert_entry_invariants(entry)


def assert_feed(feed: ParsedFeed, wanted: dict[str, Any]) -> None:
    assert (feed.title, feed.link, feed.language) == (
        wanted["title"],
        wanted["link"],
        wanted["language"],
    )
    if wanted["warning_contains"] is None:
        assert feed.warning is None
    else:
        assert feed.warning is not None
        assert wanted["warning_contains"] in feed.warning


def assert_entry(entry: ParsedEntry, wanted: dict[str, Any]) -> None:
    published = entry.published.isoformat() if entry.published else None
    actual = {
        "identity": entry.identity,
        "title": entry.title,
        "link": entry.link,
        "guid_is_permalink": entry.guid_is_permalink,
        "published": published,
        "date_flag": entry.date_flag,
        "categories": list(entry.categories),
        "author": entry.author,
        "image": entry.image,
    }
    assert actual == {key: wanted[key] for key in actual}
    for fragment in wanted.get("content_contains", []):
        assert fragment in entry.content
    for fragment in wanted.get("content_excludes", []):
        assert fragment not in entry.content
    assert entry.summary.startswith(wanted.get("summary_startswith", ""))


def assert_entry_invariants(entry: ParsedEntry) -> None:
    """What holds for every entry of every feed, whatever the expected file says."""
    texts = [entry.title, entry.summary, entry.content, entry.author or "", *entry.categories]
    assert all(unicodedata.is_normalized("NFC", t) for t in texts)
    for line in (entry.title, entry.link, entry.guid, entry.author, entry.identity):
        assert line is None or ("\n" not in line and "\r" not in line and line == line.strip())
    assert EXECUTABLE.search(entry.content) is None
    assert len(entry.summary) <= 500
    assert re.fullmatch(r"[0-9a-f]{64}", entry.content_hash)
    for moment in (entry.published, entry.updated):
        assert moment is None or moment.utcoffset() == timedelta(0)


# -- encodings and twins --------------------------------------------------------------


def test_windows_1258_equals_utf8_twin() -> None:
    legacy = parse_file("windows-1258.rss")
    twin = parse_file("baohatinh-kinh-te-padded.rss")
    for old, new in zip(legacy.entries, twin.entries, strict=True):
        assert (old.identity, old.title, old.link, old.categories, old.published) == (
            new.identity,
            new.title,
            new.link,
            new.categories,
            new.published,
        )
        assert old.summary == new.summary
        # The only real difference: the cp1258 file was written with straight quotes.
        assert old.content == new.content.replace("“", '"').replace("”", '"')
    shared = by_identity(parse_file("baohatinh-xa-hoi.rss"))[legacy.entries[1].identity]
    bridge = "Khánh thành cầu vượt sông Ngàn Phố, nối liền hai bờ Hương Sơn"
    assert legacy.entries[1].title == shared.title == bridge
    assert legacy.title == "Báo Hà Tĩnh - Kinh tế (cp1258)"


def test_nfd_twin_has_same_identities() -> None:
    decomposed = parse_file("nfd-decomposed.rss")
    composed = parse_file("baohatinh-xa-hoi.rss")
    assert decomposed.entries == composed.entries  # every field, content_hash included
    assert decomposed.title == "Báo Hà Tĩnh - Xã hội (NFD)"


def test_padded_twin_same_identity() -> None:
    padded = parse_file("baohatinh-kinh-te-padded.rss")
    unpadded = by_identity(parse_file("no-guid-no-date.rss"))
    for entry in padded.entries:
        assert entry.guid == entry.link == entry.identity
        assert entry.identity in unpadded
        assert entry.title == unpadded[entry.identity].title
    assert padded.entries[1].identity in by_identity(parse_file("baohatinh-xa-hoi.rss"))


def test_same_article_from_two_sources_has_same_identity() -> None:
    xa_hoi = parse_file("baohatinh-xa-hoi.rss").entries[0]
    chinh_tri = parse_file("baohatinh-chinh-tri.rss").entries[0]
    assert xa_hoi.identity == chinh_tri.identity
    assert normalize_link(xa_hoi.link or "") == normalize_link(chinh_tri.link or "")


# -- dates ----------------------------------------------------------------------------


def test_zoneless_vietnamese_date_is_local_time_not_utc() -> None:
    hanoi = parse_file("vietnamese-dates.rss")
    assert [e.published for e in hanoi.entries] == [datetime(2025, 5, 10, 0, 45, tzinfo=UTC)] * 3
    paris = parse_file("vietnamese-dates.rss", timezone="Europe/Paris")
    assert [e.published for e in paris.entries] == [datetime(2025, 5, 10, 5, 45, tzinfo=UTC)] * 3


def test_zoneless_rfc822_date_is_local_time_not_utc() -> None:
    feed = parse_text(
        rss("<item><title>a</title><pubDate>Sat, 10 May 2025 07:45:00</pubDate></item>")
    )
    assert feed.entries[0].published == datetime(2025, 5, 10, 0, 45, tzinfo=UTC)


def test_rss1_dc_date() -> None:
    feed = parse_file("rss1-rdf.rdf")
    assert [e.published for e in feed.entries] == [
        datetime(2025, 5, day, 1, 0, tzinfo=UTC) for day in (1, 2, 3)
    ]
    assert all(e.date_flag is None and e.updated == e.published for e in feed.entries)


def test_future_date_flagged() -> None:
    soon = (NOW + timedelta(hours=12)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    later = (NOW + timedelta(days=2)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    feed = parse_text(
        rss(
            f"<item><title>a</title><pubDate>{soon}</pubDate></item>"
            f"<item><title>b</title><pubDate>{later}</pubDate></item>"
        )
    )
    assert feed.entries[0].published == NOW + timedelta(hours=12)
    assert feed.entries[0].date_flag is None
    assert (feed.entries[1].published, feed.entries[1].date_flag) == (None, "future")


def test_unparseable_and_missing_dates_flagged() -> None:
    feed = parse_text(
        rss("<item><title>a</title><pubDate>hôm qua</pubDate></item><item><title>b</title></item>")
    )
    assert [(e.published, e.date_flag) for e in feed.entries] == [
        (None, "unparseable"),
        (None, "missing"),
    ]


# -- identity and edits ---------------------------------------------------------------


def test_edit_changes_hash_not_identity() -> None:
    before = by_identity(parse_file("edited-v1.rss"))
    after = by_identity(parse_file("edited-v2.rss"))
    edited = "https://baohatinh.example.vn/lam-gi-de-tang-ty-le-bao-phu-bao-hiem-y-te.html"
    added = "https://baohatinh.example.vn/hoi-nghi-tong-ket-nam-hoc.html"
    assert set(after) - set(before) == {added}
    assert before[edited].content_hash != after[edited].content_hash
    for identity in set(before) - {edited}:
        assert before[identity].content_hash == after[identity].content_hash


def test_no_guid_identity_is_normalized_link() -> None:
    feed = parse_text(
        rss(
            "<item><title>a</title>"
            "<link>HTTPS://BaoHaTinh.example.vn:443/bai.html?utm_source=rss&amp;id=3#top</link>"
            "</item>"
        )
    )
    entry = feed.entries[0]
    assert entry.guid is None
    assert entry.identity == "https://baohatinh.example.vn/bai.html?id=3"


def test_no_guid_no_link_identity_is_fingerprint_stable_across_normal_forms() -> None:
    item = (
        "<item><title>Tăng cường</title>"
        "<description>&lt;p&gt;Nội dung&lt;/p&gt;</description></item>"
    )
    composed = parse_text(rss(item)).entries[0]
    decomposed = parse_text(rss(unicodedata.normalize("NFD", item))).entries[0]
    assert composed.identity.startswith(FINGERPRINT_PREFIX)
    assert composed.identity == decomposed.identity


def test_guid_marked_not_permalink() -> None:
    feed = parse_text(
        rss(
            '<item><title>a</title><guid isPermaLink="false">baohatinh-123</guid></item>'
            '<item><title>b</title><guid isPermaLink="false">https://baohatinh.example.vn/b</guid>'
            "</item>"
            "<item><title>c</title><guid>https://baohatinh.example.vn/c</guid></item>"
        )
    )
    assert [(e.identity, e.guid_is_permalink, e.link) for e in feed.entries] == [
        ("baohatinh-123", False, None),
        ("https://baohatinh.example.vn/b", False, None),
        ("https://baohatinh.example.vn/c", True, "https://baohatinh.example.vn/c"),
    ]


def test_entries_sharing_an_identity_keep_the_first() -> None:
    item = "<item><title>{}</title><guid>https://baohatinh.example.vn/x</guid></item>"
    feed = parse_text(rss(item.format("đầu") + item.format("sau")))
    assert [e.title for e in feed.entries] == ["đầu"]


# -- hostile input ----------------------------------------------------------------------


def test_entity_bomb_refused_without_expansion() -> None:
    body = (FEEDS / "entity-bomb.rss").read_bytes()
    tracemalloc.start()
    try:
        with pytest.raises(ParseError, match="entity declarations"):
            parse_feed(body, url="https://x.example/", headers={}, timezone=TZ, now=NOW)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024


def bomb_in(codec: str) -> bytes:
    """entity-bomb.rss declared and written in ``codec``; UTF-7 spells "<!" in base64."""
    text = (FEEDS / "entity-bomb.rss").read_text("utf-8")
    text = text.replace('<?xml version="1.0"?>', f'<?xml version="1.0" encoding="{codec}"?>')
    if codec == "utf-7":  # Python's encoder would write "<!" directly
        return text.replace("<!ENTITY", "+ADwAIQ-ENTITY").encode("ascii")
    return text.encode(codec)


@pytest.mark.parametrize(
    "codec", ["utf-16", "utf-16-be", "utf-32", "cp037", "cp500", "cp875", "cp273", "utf-7"]
)
def test_entity_bomb_refused_in_any_encoding(codec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("feedparser must not see an entity declaration")

    monkeypatch.setattr(parse_module.feedparser, "parse", never)
    with pytest.raises(ParseError, match="refused: XML entity declarations"):
        parse_feed(bomb_in(codec), url="https://x.example/", headers={}, timezone=TZ, now=NOW)


def test_entity_declaration_in_an_encoding_named_by_the_server_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("feedparser must not see an entity declaration")

    monkeypatch.setattr(parse_module.feedparser, "parse", never)
    body = (FEEDS / "entity-bomb.rss").read_bytes().replace(b"<!ENTITY", b"+ADwAIQ-ENTITY")
    with pytest.raises(ParseError, match="refused: XML entity declarations"):
        parse_feed(
            body,
            url="https://x.example/",
            headers={"Content-Type": "application/rss+xml; charset=utf-7"},
            timezone=TZ,
            now=NOW,
        )


def test_hostile_markup_leaves_nothing_executable() -> None:
    feed = parse_file("hostile-markup.rss")
    for entry in feed.entries:
        for text in (entry.summary, entry.content, entry.image or ""):
            assert EXECUTABLE.search(text) is None, text
            assert "evil.example" not in text
    first = feed.entries[0]
    # A plain-text title is text, kept as written: every output escapes it.
    assert first.title == "Tin <script>alert(1)</script> nóng"
    assert first.content.startswith("<p>Bấm vào đây</p>")
    assert '<a rel="noopener noreferrer">liên kết</a>' in first.content


def test_header_injection_title_is_one_line() -> None:
    feed = parse_file("hostile-markup.rss")
    assert feed.entries[1].title == "Tiêu đề Bcc: victim@example.com"
    crafted = parse_text(
        rss(
            "<item><title>a&#13;&#10;Bcc: x@example.com</title>"
            "<guid>https://baohatinh.example.vn/g&#13;&#10;x</guid>"
            "<author>Tác&#13;giả</author><category>Xã&#10;hội</category></item>"
        )
    )
    entry = crafted.entries[0]
    assert entry.title == "a Bcc: x@example.com"
    assert entry.guid is not None
    assert "\r" not in entry.guid
    assert "\n" not in entry.guid
    assert (entry.author, entry.categories) == ("Tác giả", ("Xã hội",))


def test_control_characters_removed_everywhere() -> None:
    feed = parse_text(
        rss(
            "<item><title>Tin\u0085 nóng\u009f</title>"
            "<description>&lt;p&gt;Nội\u0080 dung&lt;/p&gt;</description></item>"
        )
    )
    entry = feed.entries[0]
    # feedparser maps C1 controls to their windows-1252 characters before we see them
    assert re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", entry.title + entry.content) is None


def test_not_a_feed_is_clear_error() -> None:
    with pytest.raises(ParseError) as raised:
        parse_file("not-a-feed.html")
    assert str(raised.value) == "not a feed: got an HTML page (text/html; charset=utf-8)"
    with pytest.raises(ParseError, match=r"^not a feed: got an HTML page \(no Content-Type\)$"):
        parse_file("not-a-feed.html", headers={})


@pytest.mark.parametrize("body", [b"", b"  \r\n\t "])
def test_empty_body_is_clear_error(body: bytes) -> None:
    with pytest.raises(ParseError, match="^empty body"):
        parse_feed(body, url="https://x.example/", headers={}, timezone=TZ, now=NOW)


def test_body_that_names_a_file_is_never_opened() -> None:
    # feedparser.parse(bytes) tries open(bytes) first: a body b"/etc/passwd" would be read.
    with pytest.raises(ParseError, match="^not a feed"):
        parse_feed(b"/etc/passwd", url="https://x.example/", headers={}, timezone=TZ, now=NOW)


def test_malformed_feed_keeps_entries_and_warns() -> None:
    feed = parse_file("malformed-recoverable.rss")
    assert len(feed.entries) == 2
    assert feed.warning is not None
    assert "\n" not in feed.warning
    assert feed.warning.startswith("malformed XML, read leniently: undefined entity at line 28")


def test_text_xml_without_charset_is_not_a_warning() -> None:
    for headers in ({"content-type": "text/xml"}, {}):
        assert parse_file("baohatinh-xa-hoi.rss", headers=headers).warning is None


# -- links, content, media ---------------------------------------------------------------


def test_relative_links_made_absolute() -> None:
    feed = parse_file("atom-xhtml-relative.atom")
    base = "https://baohatinh.example.vn/tin-tuc/"
    for entry in feed.entries:
        assert entry.link is not None
        assert entry.link.startswith(base)
        hrefs = re.findall(r'(?:href|src)="([^"]*)"', entry.content)
        assert hrefs
        assert all(h.startswith(base + "lien-quan/") for h in hrefs)


def test_relative_links_in_rss_resolve_against_feed_url() -> None:
    feed = parse_text(
        rss(
            "<item><title>a</title><link>/bai.html</link>"
            '<enclosure url="audio/a.mp3" type="audio/mpeg" length="1234"/>'
            "<description>&lt;img src=&quot;../anh.jpg&quot;&gt;"
            "&lt;a href=&quot;//cdn.example/x&quot;&gt;x&lt;/a&gt;</description></item>"
        ),
        url="https://baohatinh.example.vn/rss/xa-hoi.rss",
    )
    entry = feed.entries[0]
    assert entry.link == "https://baohatinh.example.vn/bai.html"
    assert entry.enclosures == (
        Enclosure("https://baohatinh.example.vn/rss/audio/a.mp3", "audio/mpeg", 1234),
    )
    assert '<img src="https://baohatinh.example.vn/anh.jpg">' in entry.content
    assert 'href="https://cdn.example/x"' in entry.content
    assert entry.image == "https://baohatinh.example.vn/anh.jpg"


def test_image_prefers_media_thumbnail_then_media_content() -> None:
    feed = parse_text(
        rss(
            '<item><title>a</title><media:thumbnail url="/t.jpg"/>'
            '<media:content url="/m.jpg" medium="image"/></item>'
            '<item><title>b</title><media:content url="/v.mp4" type="video/mp4"/>'
            '<media:content url="/m.jpg" type="image/jpeg"/></item>'
            '<item><title>c</title><enclosure url="/e.png" type="image/png" length="x"/></item>'
        )
    )
    assert [e.image for e in feed.entries] == [
        "https://baohatinh.example.vn/t.jpg",
        "https://baohatinh.example.vn/m.jpg",
        "https://baohatinh.example.vn/e.png",
    ]
    assert feed.entries[2].enclosures[0].length is None


def test_content_prefers_full_text_and_summary_is_plain_text() -> None:
    long_text = " ".join(["Hà Tĩnh"] * 120)
    feed = parse_text(
        rss(
            "<item><title>a</title>"
            "<description>&lt;p&gt;Tóm tắt &amp;amp; &lt;b&gt;ý chính&lt;/b&gt;&lt;/p&gt;"
            "</description>"
            '<content:encoded xmlns:content="http://purl.org/rss/1.0/modules/content/">'
            f"<![CDATA[<p>{long_text}</p><p>Đoạn hai</p>]]></content:encoded></item>"
            f"<item><title>b</title><description>{long_text}</description></item>"
        )
    )
    first, second = feed.entries
    assert first.summary == "Tóm tắt & ý chính"
    assert first.content.startswith("<p>Hà Tĩnh Hà Tĩnh")
    assert first.content.endswith("<p>Đoạn hai</p>")
    assert len(second.summary) <= 500
    assert second.summary.endswith(" Hà…")  # cut between words, not inside "Tĩnh"
    assert long_text.startswith(second.summary.removesuffix("…"))


def test_title_declared_html_becomes_plain_text() -> None:
    atom = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title type="html">A &amp;lt;b&amp;gt;</title>'
        '<entry><title type="html">Giá &lt;b&gt;lúa&lt;/b&gt; &amp;amp; gạo</title>'
        "<id>urn:x:1</id><updated>2025-05-10T00:00:00Z</updated></entry></feed>"
    )
    feed = parse_text(atom, headers={"Content-Type": "application/atom+xml"})
    assert feed.title == "A <b>"
    assert feed.entries[0].title == "Giá lúa & gạo"


@pytest.mark.parametrize(
    "title", ["A&lt;B", "if a&lt;b then", "C++ &lt;vector&gt; tutorial", "&lt;Trẻ em&gt; hôm nay"]
)
def test_plain_text_title_is_kept_as_written(title: str) -> None:
    feed = parse_text(rss(f"<item><title>{title}</title><guid>urn:x:1</guid></item>"))
    assert feed.entries[0].title == html.unescape(title)


def test_plain_text_atom_fields_are_kept_as_written() -> None:
    atom = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title type="text">Công nghệ &lt;3</title>'
        '<entry><title type="text">A&lt;B &amp;amp; C</title><id>urn:x:1</id>'
        "<updated>2025-05-10T00:00:00Z</updated><author><name>Nguyễn &lt;Văn&gt; A</name></author>"
        '<summary type="text">1 &lt; 2 &amp;&amp; &lt;b&gt;x&lt;/b&gt;</summary></entry></feed>'
    )
    feed = parse_text(atom, headers={"Content-Type": "application/atom+xml"})
    entry = feed.entries[0]
    assert feed.title == "Công nghệ <3"
    assert (entry.title, entry.author) == ("A<B &amp; C", "Nguyễn <Văn> A")
    assert entry.summary == "1 < 2 && <b>x</b>"


def test_html_typed_fields_are_still_rendered_as_text() -> None:
    feed = parse_text(
        rss(
            "<item><title>Giá &lt;b&gt;lúa&lt;/b&gt; &amp;amp; gạo</title><guid>urn:x:1</guid>"
            "<description>if a &amp;lt; b &lt;b&gt;then&lt;/b&gt;</description></item>"
        )
    )
    entry = feed.entries[0]
    assert entry.title == "Giá lúa & gạo"  # feedparser calls it HTML: its tags are harmless
    assert entry.summary == "if a < b then"  # an RSS description is HTML, decoded once


def test_html_title_keeps_the_text_a_browser_shows() -> None:
    # feedparser's sanitize/entry_title_object.xml: an unclosed <object> holds fallback text.
    atom = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><entry><id>urn:x:1</id>'
        '<title type="html">safe&lt;object classid="clsid:C932"&gt; description</title></entry>'
        '<entry><id>urn:x:2</id><title type="html">a&lt;script&gt;x()&lt;/script&gt;'
        "&lt;iframe&gt;&amp;lt;b&amp;gt;&lt;/iframe&gt;b</title></entry></feed>"
    )
    feed = parse_text(atom, headers={"Content-Type": "application/atom+xml"})
    assert [e.title for e in feed.entries] == ["safe description", "ab"]


def test_entry_title_wins_over_a_nested_elements_title() -> None:
    feed = parse_file("nested-title.atom")
    assert [e.title for e in feed.entries] == [
        "Khánh thành cầu vượt sông Ngàn Phố",
        "Vụ lúa xuân được mùa",
    ]


def test_double_escaped_entities_in_authors_and_categories_are_decoded_like_titles() -> None:
    feed = parse_text(
        rss(
            "<item><title>Lo&amp;#239;c</title><guid>urn:x:1</guid>"
            "<author>loic@example.fr (Lo&amp;#239;c)</author>"
            "<category>Kinh t&amp;#7871;</category><category>C++ &lt;vector&gt;</category></item>"
            "<item><title>b</title><guid>urn:x:2</guid>"
            "<dc:creator>Tr&amp;#7847;n &lt;b&gt;Hà&lt;/b&gt;</dc:creator></item>"
        )
    )
    first, second = feed.entries
    assert (first.title, first.author) == ("Loïc", "Loïc")
    assert first.categories == ("Kinh tế", "C++ <vector>")
    assert second.author == "Trần Hà"


def test_bidi_controls_and_zero_width_characters_leave_every_line_field() -> None:
    feed = parse_file("invisible-characters.rss")
    first, second = feed.entries
    assert feed.title == "Báo Hà Tĩnh - Ký tự ẩn"
    assert first.title == "Tải báo cáo gpj.exe"
    assert (first.author, first.categories) == ("Thu Hà", ("Xã hội", "Kinh tế"))
    assert second.title == "Trẻ em vui Tết 👨\u200d👩\u200d👧"  # the emoji keeps its joiners
    assert second.summary == "Nội dung giữ nguyên trong thân bài"
    assert "\u202bgiữ nguyên\u202c" in second.content  # HTML bodies keep them: <p> ends them


def test_entries_differing_only_in_author_or_enclosure_are_kept_apart() -> None:
    feed = parse_file("author-enclosure-only.rss")
    assert [(e.author, [x.url.rsplit("/", 1)[1] for x in e.enclosures]) for e in feed.entries] == [
        ("Thu Hà", ["sang.mp3"]),
        ("Minh Tuấn", ["sang.mp3"]),
        ("Thu Hà", ["trua.mp3"]),
    ]  # the fourth item repeats the first: one entry
    assert all(e.identity.startswith(FINGERPRINT_PREFIX) for e in feed.entries)


def test_categories_cleaned_deduplicated_in_order() -> None:
    feed = parse_text(
        rss(
            "<item><title>a</title><category> Xã hội </category><category>Kinh tế</category>"
            "<category>xã hội</category><dc:subject>Giáo dục</dc:subject><category> </category>"
            "</item>"
        )
    )
    assert feed.entries[0].categories == ("Xã hội", "Kinh tế", "Giáo dục")


def test_author_name_taken_from_rss_email_form() -> None:
    feed = parse_text(rss("<item><title>a</title><author>bt@baohatinh.vn (Thu Hà)</author></item>"))
    assert feed.entries[0].author == "Thu Hà"


def test_result_survives_a_process_pool() -> None:
    feed = parse_file("baohatinh-xa-hoi.rss")
    assert pickle.loads(pickle.dumps(feed)) == feed


def test_combining_mark_cannot_reopen_a_sanitized_tag() -> None:
    # NFC after sanitizing would fuse the tag's ">" with U+0338 into "≯" and
    # turn the text after it into attributes of the <a> tag.
    feed = parse_text(
        rss(
            "<item><title>a</title><description>&lt;a href=&quot;/x&quot;&gt;&amp;#x338; "
            "onmouseover=alert(1) &lt;/a&gt;</description></item>"
        )
    )
    content = feed.entries[0].content
    assert re.search(r"<[^>]*onmouseover", content) is None
    assert "\u226f" not in content


def test_plain_text_content_is_escaped_not_interpreted() -> None:
    atom = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
        "<entry><title>a</title><id>urn:x:1</id><updated>2025-05-10T00:00:00Z</updated>"
        '<content type="text">1 &lt; 2 &amp;&amp; &lt;script&gt;x&lt;/script&gt;\nhết</content>'
        "</entry></feed>"
    )
    entry = parse_text(atom, headers={"Content-Type": "application/atom+xml"}).entries[0]
    assert entry.content == "1 &lt; 2 &amp;&amp; &lt;script&gt;x&lt;/script&gt;<br>hết"
    assert entry.summary == "1 < 2 && <script>x</script> hết"  # text: every output escapes it


# -- fetch.max_entries: the first entries of a document, the rest counted -------------------


def numbered_rss(count: int, *, extra: str = "") -> str:
    items = "".join(
        f"<item><title>Tin {n}{extra}</title><guid>https://baohatinh.example.vn/{n}</guid></item>"
        for n in range(count)
    )
    return rss(items)


def test_max_entries_keeps_the_first_in_document_order_and_counts_the_rest() -> None:
    feed = parse_text(numbered_rss(10), max_entries=3)
    assert [e.title for e in feed.entries] == ["Tin 0", "Tin 1", "Tin 2"]
    assert feed.left_out == 7
    assert feed.warning == "7 entries left out: fetch.max_entries is 3 (the first 3 were kept)"
    assert feed.title == "Thử"


def test_a_document_within_max_entries_is_read_whole() -> None:
    whole = parse_text(numbered_rss(5))
    capped = parse_text(numbered_rss(5), max_entries=5)
    assert capped == whole
    assert (capped.left_out, capped.warning) == (0, None)


def test_max_entries_in_atom_with_prefixes_and_rss1() -> None:
    atom = (
        '<?xml version="1.0"?><a:feed xmlns:a="http://www.w3.org/2005/Atom"><a:title>t</a:title>'
        + "".join(
            f"<a:entry><a:title>Tin {n}</a:title><a:id>urn:x:{n}</a:id>"
            "<a:source><a:title>nguồn</a:title></a:source></a:entry>"
            for n in range(6)
        )
        + "</a:feed>"
    )
    feed = parse_text(atom, headers={"Content-Type": "application/atom+xml"}, max_entries=2)
    assert ([e.title for e in feed.entries], feed.left_out) == (["Tin 0", "Tin 1"], 4)
    rdf = (FEEDS / "rss1-rdf.rdf").read_bytes()
    arguments: dict[str, Any] = {"url": "https://x.example/", "timezone": TZ, "now": NOW}
    capped = parse_feed(rdf, headers={}, max_entries=1, **arguments)
    whole = parse_feed(rdf, headers={}, **arguments)
    assert (capped.entries, capped.left_out) == (whole.entries[:1], 2)
    assert capped.title == whole.title
    assert capped.warning is not None


def test_max_entries_in_a_legacy_encoding() -> None:
    legacy = (FEEDS / "windows-1258.rss").read_bytes()
    arguments: dict[str, Any] = {"url": "https://x.example/", "timezone": TZ, "now": NOW}
    headers = {"Content-Type": "application/rss+xml; charset=windows-1258"}
    capped = parse_feed(legacy, headers=headers, max_entries=2, **arguments)
    whole = parse_feed(legacy, headers=headers, **arguments)
    assert capped.entries == whole.entries[:2]
    assert capped.left_out == len(whole.entries) - 2


def test_max_entries_in_malformed_xml_still_cuts_and_counts() -> None:
    # A bare "&" stops an XML parser at once; feedparser reads such a body leniently.
    feed = parse_text(numbered_rss(10, extra=" & gạo"), max_entries=3)
    assert [e.title for e in feed.entries] == ["Tin 0 & gạo", "Tin 1 & gạo", "Tin 2 & gạo"]
    assert feed.left_out == 7
    assert feed.warning is not None
    assert feed.warning.startswith("malformed XML, read leniently")
    assert feed.warning.endswith(
        "; 7 entries left out: fetch.max_entries is 3 (the first 3 were kept)"
    )


def test_max_entries_when_the_xml_breaks_after_the_cut() -> None:
    items = "".join(
        f"<item><title>Tin {n}{' & gạo' if n >= 5 else ''}</title>"
        f"<guid>https://baohatinh.example.vn/{n}</guid></item>"
        for n in range(10)
    )
    feed = parse_text(rss(items), max_entries=3)
    assert ([e.title for e in feed.entries], feed.left_out) == (["Tin 0", "Tin 1", "Tin 2"], 7)
    assert feed.warning == "7 entries left out: fetch.max_entries is 3 (the first 3 were kept)"


def test_max_entries_reads_html_entities_without_a_dtd() -> None:
    # &nbsp; is undefined in XML: the cut still falls exactly, feedparser reads it leniently
    feed = parse_text(numbered_rss(10, extra="&nbsp;mới"), max_entries=4)
    assert [e.title for e in feed.entries] == [f"Tin {n} mới" for n in range(4)]
    assert feed.left_out == 6


def test_a_huge_document_is_cut_before_feedparser_builds_it() -> None:
    body = numbered_rss(20_000).encode()
    tracemalloc.start()
    try:
        feed = parse_feed(
            body, url="https://x.example/", headers={}, timezone=TZ, now=NOW, max_entries=500
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (len(feed.entries), feed.left_out) == (500, 19_500)
    assert peak < 60 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB"


def test_an_entry_of_megabytes_is_cut_before_it_is_sanitized() -> None:
    paragraph = "<p>" + "Hà Tĩnh đẩy mạnh chuyển đổi số. " * 10 + "</p>"
    huge = paragraph * 20_000  # 6.6 MB of HTML in one description
    feed = parse_text(
        rss(
            f"<item><title>{'Dài ' * 100_000}</title><guid>urn:x:1</guid>"
            f"<description><![CDATA[{huge}]]></description></item>"
        )
    )
    (entry,) = feed.entries
    assert len(entry.content) <= _fields.CONTENT_LIMIT
    assert entry.content.startswith(paragraph)
    assert entry.content.endswith("</p>")  # the cut falls between tags, every tag closed
    assert len(entry.title) <= _fields.TEXT_LIMIT
    assert entry.summary.startswith("Hà Tĩnh đẩy mạnh")
