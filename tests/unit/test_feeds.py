"""Generated feeds: every field in each format, escaping, hostile input, stable ids."""

from __future__ import annotations

import dataclasses
import json
import re
import unicodedata
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser
import pytest

from feedsvc import opml
from feedsvc.config import Category, Site
from feedsvc.ingest.parse import parse_feed
from feedsvc.model import Enclosure, Entry
from feedsvc.publish.feeds import FeedInfo, render, render_all
from feedsvc.publish.items import to_uri
from feedsvc.publish.opml import render_opml
from tests.conftest import DATA, NOW

SITE = Site(title="Báo Hà Tĩnh — Bản tin", base_url="http://127.0.0.1:8080")
HUB = "https://hub.example.vn/"
FORMATS = ("rss", "atom", "json")
FEED = FeedInfo.for_category(
    SITE, Category(id="tre-em", title="Trẻ em", description="Tin về trẻ em"), hub=HUB
)
NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "content": "http://purl.org/rss/1.0/modules/content/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "media": "http://search.yahoo.com/mrss/",
}
TITLE = "Tăng cường bảo vệ trẻ em trong tình hình mới"
HOSTILE_TITLE = "Tin <script>alert(1)</script> nóng"
RFC822 = re.compile(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d \+0000")
TAG = re.compile(r"tag:127\.0\.0\.1,\d{4}-\d\d-\d\d:entry/[a-z0-9_-]+/[0-9a-f]{40}")


def entry(id: int = 1, **fields: Any) -> Entry:
    defaults: dict[str, Any] = {
        "source_id": "baohatinh-xa-hoi",
        "identity": f"https://baohatinh.example.vn/bai-{id}.html",
        "title": TITLE,
        "first_seen": NOW - timedelta(hours=id),
        "link": f"https://baohatinh.example.vn/bai-{id}.html",
        "guid": f"https://baohatinh.example.vn/bai-{id}.html",
        "guid_is_permalink": True,
        "summary": "Sáng 19/6, Sở LĐTB&XH tỉnh tổ chức hội nghị.",
        "content": "<p>Sáng 19/6, Sở <b>LĐTB&amp;XH</b> tỉnh tổ chức hội nghị.</p>",
        "author": "Phóng viên Hà Tĩnh",
        "categories": ("Xã hội", "Trẻ em"),
        "published": NOW - timedelta(hours=id, minutes=30),
    }
    return Entry(id=id, **{**defaults, **fields})


def rss_items(data: bytes) -> list[ET.Element]:
    return ET.fromstring(data).findall("channel/item")


def atom_entries(data: bytes) -> list[ET.Element]:
    return ET.fromstring(data).findall("atom:entry", NS)


# RSS 2.0


def test_rss_channel_names_itself_and_its_hub() -> None:
    channel = ET.fromstring(render("rss", FEED, [entry()], NOW)).find("channel")
    assert channel is not None
    assert channel.findtext("title") == "Trẻ em"
    assert channel.findtext("link") == "http://127.0.0.1:8080"
    assert channel.findtext("description") == "Tin về trẻ em"
    assert channel.findtext("language") == "vi"
    links = {link.get("rel"): link.get("href") for link in channel.findall("atom:link", NS)}
    assert links == {"self": "http://127.0.0.1:8080/feeds/tre-em.rss", "hub": HUB}
    assert RFC822.fullmatch(channel.findtext("lastBuildDate") or "")


def test_rss_item_fields() -> None:
    e = entry(
        enclosures=(Enclosure("https://baohatinh.example.vn/a.mp3", "audio/mpeg", 4321),),
        image="https://baohatinh.example.vn/anh.jpg",
    )
    (item,) = rss_items(render("rss", FEED, [e], NOW))
    assert item.findtext("title") == TITLE
    assert item.findtext("link") == e.link
    guid = item.find("guid")
    assert guid is not None
    assert guid.text == e.guid
    assert guid.get("isPermaLink") == "true"
    assert item.findtext("description") == "Sáng 19/6, Sở LĐTB&amp;XH tỉnh tổ chức hội nghị."
    assert item.findtext("content:encoded", namespaces=NS) == e.content
    assert [c.text for c in item.findall("category")] == ["Xã hội", "Trẻ em"]
    assert item.findtext("pubDate") == "Fri, 27 Nov 2026 23:30:00 +0000"
    assert item.findtext("dc:creator", namespaces=NS) == "Phóng viên Hà Tĩnh"
    assert item.find("author") is None  # RSS <author> must be an email address
    enclosure = item.find("enclosure")
    assert enclosure is not None
    assert enclosure.attrib == {
        "url": "https://baohatinh.example.vn/a.mp3",
        "length": "4321",
        "type": "audio/mpeg",
    }
    thumbnail = item.find("media:thumbnail", NS)
    assert thumbnail is not None
    assert thumbnail.get("url") == e.image


def test_rss_enclosures_rss_cannot_carry_go_to_media_content() -> None:
    e = entry(
        enclosures=(
            Enclosure("https://baohatinh.example.vn/anh.jpg", "image/jpeg"),  # no length
            Enclosure("https://baohatinh.example.vn/a.mp3", "audio/mpeg", 99),
            Enclosure("https://baohatinh.example.vn/b.pdf", "application/pdf; q=1", 5),
        )
    )
    (item,) = rss_items(render("rss", FEED, [e], NOW))
    assert [x.get("url") for x in item.findall("enclosure")] == [
        "https://baohatinh.example.vn/a.mp3"
    ]
    media = [(m.get("url"), m.get("type")) for m in item.findall("media:content", NS)]
    assert media == [
        ("https://baohatinh.example.vn/anh.jpg", "image/jpeg"),
        ("https://baohatinh.example.vn/b.pdf", None),  # not a bare media type: left out
    ]


def test_rss_author_that_is_an_email_goes_in_author() -> None:
    (item,) = rss_items(render("rss", FEED, [entry(author="toasoan@baohatinh.vn")], NOW))
    assert item.findtext("author") == "toasoan@baohatinh.vn"
    assert item.find("dc:creator", NS) is None


def test_rss_without_summary_puts_content_in_description() -> None:
    (item,) = rss_items(render("rss", FEED, [entry(summary="")], NOW))
    assert item.findtext("description") == entry().content


def test_feed_without_hub_names_none() -> None:
    plain = FeedInfo.for_all(SITE)
    assert (plain.id, plain.title, plain.hub) == ("all", SITE.title, None)
    for fmt in FORMATS:
        data = render(fmt, plain, [entry()], NOW)
        assert b"hub" not in data
        assert f"http://127.0.0.1:8080/feeds/all.{fmt}".encode() in data


# Atom 1.0


def test_atom_feed_fields() -> None:
    root = ET.fromstring(render("atom", FEED, [entry()], NOW))
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "vi"
    assert root.findtext("atom:id", namespaces=NS) == "http://127.0.0.1:8080/feeds/tre-em.atom"
    assert root.findtext("atom:title", namespaces=NS) == "Trẻ em"
    assert root.findtext("atom:subtitle", namespaces=NS) == "Tin về trẻ em"
    assert root.findtext("atom:author/atom:name", namespaces=NS) == SITE.title
    links = {(x.get("rel"), x.get("href"), x.get("type")) for x in root.findall("atom:link", NS)}
    assert links == {
        ("self", "http://127.0.0.1:8080/feeds/tre-em.atom", "application/atom+xml"),
        ("alternate", "http://127.0.0.1:8080", "text/html"),
        ("hub", HUB, None),
    }


def test_atom_entry_fields() -> None:
    e = entry(
        updated=NOW - timedelta(minutes=10),
        enclosures=(
            Enclosure("https://baohatinh.example.vn/a.mp3", "audio/mpeg", 4321),
            Enclosure("https://baohatinh.example.vn/b.jpg", "image/jpeg"),
        ),
        image="https://baohatinh.example.vn/anh.jpg",
    )
    (atom,) = atom_entries(render("atom", FEED, [e], NOW))
    assert atom.findtext("atom:id", namespaces=NS) == e.guid
    assert atom.findtext("atom:title", namespaces=NS) == TITLE
    assert atom.findtext("atom:published", namespaces=NS) == "2026-11-27T23:30:00+00:00"
    assert atom.findtext("atom:updated", namespaces=NS) == "2026-11-28T00:50:00+00:00"
    assert atom.findtext("atom:author/atom:name", namespaces=NS) == "Phóng viên Hà Tĩnh"
    content = atom.find("atom:content", NS)
    assert content is not None
    assert content.get("type") == "html"
    assert content.text == e.content
    summary = atom.find("atom:summary", NS)
    assert summary is not None
    assert summary.text == e.summary
    assert summary.get("type") is None
    assert [c.get("term") for c in atom.findall("atom:category", NS)] == ["Xã hội", "Trẻ em"]
    links = [(x.get("rel"), x.get("href"), x.get("length")) for x in atom.findall("atom:link", NS)]
    assert links == [
        (None, e.link, None),  # rel defaults to "alternate"
        ("enclosure", "https://baohatinh.example.vn/a.mp3", "4321"),
        ("enclosure", "https://baohatinh.example.vn/b.jpg", None),
    ]
    thumbnail = atom.find("media:thumbnail", NS)
    assert thumbnail is not None
    assert thumbnail.get("url") == e.image


def test_atom_entry_without_link_or_content_still_has_content() -> None:
    e = entry(link=None, guid=None, content="", summary="Chỉ có tóm tắt & thế thôi")
    (atom,) = atom_entries(render("atom", FEED, [e], NOW))
    assert atom.findtext("atom:content", namespaces=NS) == "Chỉ có tóm tắt &amp; thế thôi"


# JSON Feed 1.1


def test_json_feed_fields() -> None:
    e = entry(
        enclosures=(Enclosure("https://baohatinh.example.vn/a.mp3", "audio/mpeg", 4321),),
        image="https://baohatinh.example.vn/anh.jpg",
    )
    document = json.loads(render("json", FEED, [e], NOW))
    assert {k: v for k, v in document.items() if k != "items"} == {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Trẻ em",
        "home_page_url": "http://127.0.0.1:8080",
        "feed_url": "http://127.0.0.1:8080/feeds/tre-em.json",
        "description": "Tin về trẻ em",
        "language": "vi",
        "authors": [{"name": SITE.title}],
        "hubs": [{"type": "WebSub", "url": HUB}],
    }
    assert document["items"] == [
        {
            "id": e.guid,
            "url": e.link,
            "title": TITLE,
            "content_html": e.content,
            "summary": e.summary,
            "image": e.image,
            "date_published": "2026-11-27T23:30:00Z",
            "date_modified": "2026-11-27T23:30:00Z",
            "authors": [{"name": "Phóng viên Hà Tĩnh"}],
            "tags": ["Xã hội", "Trẻ em"],
            "attachments": [
                {
                    "url": "https://baohatinh.example.vn/a.mp3",
                    "mime_type": "audio/mpeg",
                    "size_in_bytes": 4321,
                }
            ],
        }
    ]


def test_json_item_without_html_has_content_text() -> None:
    (item,) = json.loads(render("json", FEED, [entry(content="")], NOW))["items"]
    assert item["content_text"] == entry().summary
    assert "content_html" not in item


# All formats


def titles(fmt: str, data: bytes) -> list[str]:
    if fmt == "json":
        return [item["title"] for item in json.loads(data)["items"]]
    if fmt == "rss":
        return [item.findtext("title") or "" for item in rss_items(data)]
    return [e.findtext("atom:title", namespaces=NS) or "" for e in atom_entries(data)]


def ids(fmt: str, data: bytes) -> list[str]:
    if fmt == "json":
        return [item["id"] for item in json.loads(data)["items"]]
    if fmt == "rss":
        return [item.findtext("guid") or "" for item in rss_items(data)]
    return [e.findtext("atom:id", namespaces=NS) or "" for e in atom_entries(data)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_entries_come_newest_first_by_date(fmt: str) -> None:
    dated = [
        entry(1, title="giữa", published=NOW - timedelta(days=2)),
        entry(2, title="mới nhất", published=None, first_seen=NOW),  # no date: first seen
        entry(3, title="cũ nhất", published=NOW - timedelta(days=9)),
    ]
    assert titles(fmt, render(fmt, FEED, dated, NOW)) == ["mới nhất", "giữa", "cũ nhất"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_vietnamese_text_comes_out_in_nfc(fmt: str) -> None:
    nfd = unicodedata.normalize("NFD", TITLE)
    data = render(fmt, FEED, [entry(title=nfd)], NOW)
    assert titles(fmt, data) == [TITLE]
    assert TITLE.encode() in data  # UTF-8, not escaped, in every format


@pytest.mark.parametrize("fmt", FORMATS)
def test_hostile_title_comes_out_as_text(fmt: str) -> None:
    data = render(fmt, FEED, [entry(title=HOSTILE_TITLE)], NOW)
    assert titles(fmt, data) == [HOSTILE_TITLE]
    assert b"<script" not in data  # escaped (&lt;script or a JSON string), never markup


@pytest.mark.parametrize("fmt", FORMATS)
def test_html_content_is_escaped_not_embedded(fmt: str) -> None:
    html = '<p onclick="x()">a</p><script>alert(1)</script>]]><b>'
    data = render(fmt, FEED, [entry(content=html)], NOW)
    if fmt == "json":
        assert json.loads(data)["items"][0]["content_html"] == html
        return
    root = ET.fromstring(data)  # well-formed despite "]]>" and the unclosed <b>
    assert not root.findall(".//script")
    assert not root.findall(".//p")
    assert html in [element.text for element in root.iter()]


@pytest.mark.parametrize("fmt", FORMATS)
def test_control_characters_and_invalid_code_points_never_fail_the_feed(fmt: str) -> None:
    dirty = entry(
        title="Tiêu đề\x00 có\x0b ký tự\ufffe lạ\ud800\r\nBcc: victim@example.com",
        summary="Tóm\x00 tắt\x1f\udfff",
        content="<p>Nội\x0c dung\ufffe</p>",
        author="Phóng\x08 viên",
        categories=("Xã\x00 hội",),
    )
    data = render(fmt, FEED, [dirty, entry(2)], NOW)
    assert titles(fmt, data) == ["Tiêu đề có ký tự lạ Bcc: victim@example.com", TITLE]
    text = data.decode("utf-8")
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\ud800-\udfff]", text)
    if fmt != "json":
        feedparsed = feedparser.parse(data)
        assert not feedparsed.bozo, feedparsed.get("bozo_exception")
        assert feedparsed.entries[0].title == titles(fmt, data)[0]


@pytest.mark.parametrize("fmt", FORMATS)
def test_permalink_guid_is_the_id_else_a_tag_uri(fmt: str) -> None:
    permalink = entry(1)
    opaque = entry(2, guid="urn:uuid:1234", guid_is_permalink=False)
    no_guid = entry(3, guid=None, guid_is_permalink=False)
    found = ids(fmt, render(fmt, FEED, [permalink, opaque, no_guid], NOW))
    assert found[0] == permalink.guid
    assert TAG.fullmatch(found[1])
    assert TAG.fullmatch(found[2])
    assert found[1] != found[2]
    assert found[1].startswith("tag:127.0.0.1,2026-11-27:entry/baohatinh-xa-hoi/")


@pytest.mark.parametrize("fmt", FORMATS)
def test_ids_survive_edits_and_rerenders(fmt: str) -> None:
    original = entry(2, guid=None, guid_is_permalink=False)
    edited = dataclasses.replace(
        original,
        title="Tiêu đề đã sửa",
        content="<p>Mới</p>",
        revision=1,
        changed=NOW,
        link="https://baohatinh.example.vn/moi.html",
    )
    before = ids(fmt, render(fmt, FEED, [original], NOW))
    after = ids(fmt, render(fmt, FEED, [edited, entry(5)], NOW + timedelta(days=3)))
    assert before[0] == after[0]


@pytest.mark.parametrize("fmt", FORMATS)
def test_same_input_gives_the_same_bytes(fmt: str) -> None:
    entries = [entry(1), entry(2), entry(3)]
    first = render(fmt, FEED, entries, NOW)
    assert render(fmt, FEED, list(reversed(entries)), NOW + timedelta(hours=5)) == first


def feed_updated(fmt: str, data: bytes) -> str:
    root = ET.fromstring(data)
    if fmt == "rss":
        return root.findtext("channel/lastBuildDate") or ""
    return root.findtext("atom:updated", namespaces=NS) or ""


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_feed_updated_is_the_newest_entry_or_now_when_empty(fmt: str) -> None:
    newest = entry(1, published=datetime(2026, 11, 20, 8, 0, tzinfo=UTC))
    older = entry(2, published=datetime(2026, 11, 1, 8, 0, tzinfo=UTC))
    expected = {"rss": "Fri, 20 Nov 2026 08:00:00 +0000", "atom": "2026-11-20T08:00:00+00:00"}
    assert feed_updated(fmt, render(fmt, FEED, [older, newest], NOW)) == expected[fmt]
    empty = {"rss": "Sat, 28 Nov 2026 01:00:00 +0000", "atom": "2026-11-28T01:00:00+00:00"}
    assert feed_updated(fmt, render(fmt, FEED, [], NOW)) == empty[fmt]


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_an_edit_seen_later_makes_the_feed_newer(fmt: str) -> None:
    e = entry(1)
    edited = dataclasses.replace(e, revision=1, changed=NOW - timedelta(minutes=5))
    before, after = (feed_updated(fmt, render(fmt, FEED, [x], NOW)) for x in (e, edited))
    assert before != after


def test_render_all_matches_render() -> None:
    entries = [entry(1), entry(2)]
    documents = render_all(FORMATS, FEED, entries, NOW)
    assert documents == {fmt: render(fmt, FEED, entries, NOW) for fmt in FORMATS}


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_feedparser_reads_every_field_back(fmt: str) -> None:
    e = entry(enclosures=(Enclosure("https://baohatinh.example.vn/a.mp3", "audio/mpeg", 4321),))
    parsed = feedparser.parse(render(fmt, FEED, [e], NOW))
    assert not parsed.bozo
    assert parsed.feed.title == "Trẻ em"
    (item,) = parsed.entries
    assert (item.title, item.link, item.id) == (TITLE, e.link, e.guid)
    assert item.author == "Phóng viên Hà Tĩnh"
    assert [t.term for t in item.tags] == ["Xã hội", "Trẻ em"]
    assert item.published_parsed[:5] == (2026, 11, 27, 23, 30)
    assert [x.href for x in item.enclosures] == ["https://baohatinh.example.vn/a.mp3"]


# Links


@pytest.mark.parametrize(
    ("given", "published"),
    [
        ("https://baohatinh.vn/a.html?x=1#top", "https://baohatinh.vn/a.html?x=1#top"),
        (
            "https://baohatinh.vn/tin tức/trẻ-em.html",
            "https://baohatinh.vn/tin%20t%E1%BB%A9c/tr%E1%BA%BB-em.html",
        ),
        ("https://báohàtĩnh.vn/a", "https://xn--bohtnh-ktaf66d.vn/a"),
        ("javascript:alert(1)", None),
        ("data:text/html,<script>", None),
        ("", None),
    ],
)
def test_links_are_ascii_http_uris(given: str, published: str | None) -> None:
    assert to_uri(given) == published


def test_unsafe_link_is_left_out_of_every_format() -> None:
    e = entry(link="javascript:alert(1)", image="javascript:alert(2)")
    for fmt in FORMATS:
        assert b"javascript:" not in render(fmt, FEED, [e], NOW)


# The corpus: hostile markup, through the real parser


def parsed_entries(name: str) -> list[Entry]:
    body = (DATA / "feeds" / name).read_bytes()
    feed = parse_feed(
        body,
        url="https://baohatinh.example.vn/rss",
        headers={},
        timezone="Asia/Ho_Chi_Minh",
        now=NOW,
    )
    fields = {f.name for f in dataclasses.fields(Entry)}
    return [
        Entry(
            id=index,
            source_id="hostile",
            first_seen=NOW,
            **{k: v for k, v in dataclasses.asdict(p).items() if k in fields},
        )
        for index, p in enumerate(feed.entries, 1)
    ]


def bodies(fmt: str, data: bytes) -> list[str]:
    """Every HTML or text body a reader renders: descriptions, contents, summaries."""
    if fmt == "json":
        items = json.loads(data)["items"]
        return [item.get(k, "") for item in items for k in ("content_html", "summary")]
    paths = {"rss": ("description", "content:encoded"), "atom": ("atom:content", "atom:summary")}
    containers = rss_items(data) if fmt == "rss" else atom_entries(data)
    return [c.findtext(p, "", NS) for c in containers for p in paths[fmt]]


@pytest.mark.parametrize("fmt", FORMATS)
def test_nothing_executable_survives_from_hostile_markup(fmt: str) -> None:
    entries = parsed_entries("hostile-markup.rss")
    data = render(fmt, FEED, entries, NOW)
    assert b"<script" not in data
    assert b"<iframe" not in data
    assert b"javascript:" not in data
    html = " ".join(bodies(fmt, data)).lower()
    for evil in ("<script", "onclick", "onerror", "javascript:", "<iframe", "<style"):
        assert evil not in html
    assert "bấm vào đây" in html  # the harmless text is kept
    # Titles stay one line of text, whatever markup the parser left in them.
    shown = titles(fmt, data)
    assert shown == [e.title for e in sorted(entries, key=lambda e: e.date, reverse=True)]
    assert all("\n" not in title and "\r" not in title for title in shown)


# OPML of the category feeds


def test_opml_lists_each_category_feed_once_in_the_preferred_format() -> None:
    categories = [Category(id="xa-hoi", title="Xã hội"), Category(id="tre-em", title="Trẻ em")]
    data = render_opml(SITE.title, "http://127.0.0.1:8080/", categories, ["atom", "rss"], NOW)
    assert opml.read(data) == [
        opml.Outline(
            "http://127.0.0.1:8080/feeds/xa-hoi.atom", "Xã hội", "", "http://127.0.0.1:8080/"
        ),
        opml.Outline(
            "http://127.0.0.1:8080/feeds/tre-em.atom", "Trẻ em", "", "http://127.0.0.1:8080/"
        ),
    ]
    assert ET.fromstring(data).findtext("head/title") == SITE.title


def test_opml_without_formats_lists_nothing() -> None:
    assert opml.read(render_opml("x", "http://h", [Category(id="a", title="A")], [], NOW)) == []
