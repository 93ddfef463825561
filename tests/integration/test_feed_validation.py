"""Generated feeds against their specifications.

Atom: the RFC 4287 RELAX NG schema (tests/data/schemas/atom.rnc, transcribed
from the RFC's Appendix B), checked by jing, plus the RFC's two Schematron rules
and the W3C Feed Validation Service's Atom errors that a schema cannot express.
RSS 2.0: the W3C validator's error rules (rubys/feedvalidator), as assertions,
since the service is out of reach offline and not packaged on PyPI. JSON Feed
1.1: the spec's required fields and types.

jing comes from Debian (``apt-get install -y jing``). Without it this module
skips, except under CI (the CI variable set), where a missing jing fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from feedsvc.config import Category, Site
from feedsvc.model import Enclosure, Entry
from feedsvc.publish.feeds import FeedInfo, render
from feedsvc.stories.model import SeriesContext, StoryContext, StoryRef
from tests.conftest import DATA, NOW

SCHEMA = DATA / "schemas" / "atom.rnc"
SITE = Site(title="Báo Hà Tĩnh — Bản tin", base_url="http://127.0.0.1:8080")
FEED = FeedInfo.for_category(
    SITE, Category(id="xa-hoi", title="Xã hội"), hub="https://hub.example.vn/"
)
ATOM = "{http://www.w3.org/2005/Atom}"
NS = {"atom": ATOM[1:-1]}

# The W3C validator's own patterns (feedvalidator/validators.py and item.py).
W3C_FULL_URI = re.compile(r"[a-zA-Z][0-9a-zA-Z+\-.]*:(//)?[0-9a-zA-Z;/?:@&=+$.\-_!~*'()%,#]+")
W3C_TAG = re.compile(
    r"tag:([a-z0-9\-._]+?@)?[a-z0-9.\-]+?,\d{4}(-\d{2}(-\d{2})?)?:[0-9a-zA-Z;/?:@&=+$.\-_!~*'()%,]+"
)
W3C_RFC822 = re.compile(
    r"(((Mon)|(Tue)|(Wed)|(Thu)|(Fri)|(Sat)|(Sun)), *)?\d\d? +((Jan)|(Feb)|(Mar)|(Apr)|(May)|"
    r"(Jun)|(Jul)|(Aug)|(Sep)|(Oct)|(Nov)|(Dec)) +\d\d(\d\d)? +\d\d:\d\d(:\d\d)? +"
    r"(([+-]?\d\d\d\d)|(UT)|(GMT)|(EST)|(EDT)|(CST)|(CDT)|(MST)|(MDT)|(PST)|(PDT)|\w)"
)
W3C_EMAIL = re.compile(
    r"([a-zA-Z0-9_\-+.]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))"
    r"([a-zA-Z]{2,4}|[0-9]{1,3})(\]?)"
)
W3C_MIME = re.compile(r'[^\s()<>,;:\\"/\[\]?=]+/[^\s()<>,;:\\"/\[\]?=]+')
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def entry(id: int, **fields: Any) -> Entry:
    defaults: dict[str, Any] = {
        "source_id": "baohatinh-xa-hoi",
        "identity": f"https://baohatinh.example.vn/bai-{id}.html",
        "title": f"Bảo vệ trẻ em ở Hà Tĩnh, bài {id}",
        "first_seen": NOW - timedelta(hours=id),
        "link": f"https://baohatinh.example.vn/bai-{id}.html",
        "guid": f"https://baohatinh.example.vn/bai-{id}.html",
        "guid_is_permalink": True,
        "summary": "Sở LĐTB&XH tỉnh tổ chức hội nghị <đầu năm>.",
        "content": "<p>Sở <b>LĐTB&amp;XH</b> tỉnh tổ chức hội nghị.</p>",
        "author": "Phóng viên",
        "categories": ("Xã hội",),
        "published": NOW - timedelta(hours=id, minutes=7),
    }
    return Entry(id=id, **{**defaults, **fields})


# Every shape an entry can take: the feeds below must validate with all of them.
ENTRIES = [
    entry(1),
    entry(2, guid="urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e", guid_is_permalink=False),
    entry(3, guid=None, guid_is_permalink=False, author=None, categories=()),
    entry(4, link=None, guid=None, content="", summary="", published=None),
    entry(5, author="toasoan@baohatinh.vn", updated=NOW - timedelta(minutes=1)),
    entry(
        6,
        title="Tin <script>alert(1)</script> nóng\x00\x0b\ufffe\ud800\r\nBcc: victim@example.com",
        summary="Tóm\x1f tắt\udfff",
        content='<p>Bấm</p>]]><a href="https://x.vn/">&lt;b&gt;</a>',
    ),
    entry(
        7,
        link="https://baohatinh.example.vn/tin tức/trẻ-em.html",
        enclosures=(
            Enclosure("https://baohatinh.example.vn/anh.jpg", "image/jpeg"),
            Enclosure("https://baohatinh.example.vn/a.mp3", "audio/mpeg", 123456),
            Enclosure("https://baohatinh.example.vn/b.pdf", "not a type"),
        ),
        image="https://baohatinh.example.vn/thumb.jpg",
    ),
    entry(8, title="", summary="", content="<p>Chỉ có nội dung</p>"),
]


def ref(id: int, source: str = "Báo Hà Tĩnh") -> StoryRef:
    return StoryRef(next(e for e in ENTRIES if e.id == id), source)


# Stories around the entries: every decoration an item can carry, hostile text included.
STORIES = {
    1: StoryContext(
        series=SeriesContext(1, "Bài 1: Bảo vệ trẻ em", 1, ((1, ref(1)), (2, ref(5)))),
        related=(ref(2), ref(7), ref(4), ref(6, 'Tuổi Trẻ <script>"x"</script>')),
        also_reported_by=(ref(5, "Thanh Niên"), ref(4, "Dân trí")),
        cluster_id=1,
    ),
    5: StoryContext(
        series=SeriesContext(1, "Bài 1: Bảo vệ trẻ em", 2, ((1, ref(1)), (2, ref(5)))),
        cluster_id=3,
    ),
    4: StoryContext(related=(ref(1),), cluster_id=4),
    8: StoryContext(related=(ref(6),), also_reported_by=(ref(7, "VnExpress"),), cluster_id=8),
}


def jing() -> str:
    path = shutil.which("jing")
    if path:
        return path
    message = "jing is not installed: apt-get install -y jing (Debian package 'jing')"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def run_jing(document: bytes, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "feed.atom"
    path.write_bytes(document)
    return subprocess.run(
        [jing(), "-c", str(SCHEMA), str(path)], capture_output=True, text=True, timeout=120
    )


# Atom 1.0


def test_atom_feed_validates_against_the_rfc_4287_schema(tmp_path: Path) -> None:
    result = run_jing(render("atom", FEED, ENTRIES, NOW, STORIES), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_empty_atom_feed_validates_against_the_schema(tmp_path: Path) -> None:
    result = run_jing(render("atom", FEED, [], NOW), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_jing_rejects_an_atom_feed_without_an_id(tmp_path: Path) -> None:
    """The schema check can fail: an entry missing its required atom:id is caught."""
    document = render("atom", FEED, ENTRIES[:1], NOW)
    broken, found = re.subn(rb"(<entry>)<id>[^<]*</id>", rb"\1", document, count=1)
    assert found == 1
    result = run_jing(broken, tmp_path)
    assert result.returncode != 0
    assert 'missing required element "id"' in result.stdout


def test_atom_meets_the_rfc_rules_the_schema_leaves_to_schematron() -> None:
    root = ET.fromstring(render("atom", FEED, ENTRIES, NOW, STORIES))
    feed_has_author = root.find("atom:author", NS) is not None
    for atom in root.findall("atom:entry", NS):
        links = atom.findall("atom:link", NS)
        alternates = [x for x in links if x.get("rel", "alternate") == "alternate"]
        assert alternates or atom.find("atom:content", NS) is not None
        assert feed_has_author or atom.find("atom:author", NS) is not None


def test_atom_meets_the_w3c_validators_rules() -> None:
    document = render("atom", FEED, ENTRIES, NOW, STORIES)
    root = ET.fromstring(document)
    self_links = [x.get("href") for x in root.findall("atom:link[@rel='self']", NS)]
    assert self_links == ["http://127.0.0.1:8080/feeds/xa-hoi.atom"]  # the document's URL
    ids = [root.findtext("atom:id", namespaces=NS) or ""]
    for atom in root.findall("atom:entry", NS):
        ids.append(atom.findtext("atom:id", namespaces=NS) or "")
        assert (atom.findtext("atom:title", namespaces=NS) or "").strip()
        for date in ("atom:updated", "atom:published"):
            assert RFC3339.fullmatch(atom.findtext(date, namespaces=NS) or "")
        alternates = Counter(
            (x.get("type"), x.get("hreflang"))
            for x in atom.findall("atom:link", NS)
            if x.get("rel", "alternate") == "alternate"
        )
        assert all(n == 1 for n in alternates.values())  # DuplicateAtomLink
        for link in atom.findall("atom:link", NS):
            assert W3C_FULL_URI.fullmatch(link.get("href", ""))
            assert link.get("type") is None or W3C_MIME.fullmatch(link.get("type", ""))
    assert len(set(ids)) == len(ids)
    assert all(W3C_TAG.fullmatch(i) or W3C_FULL_URI.fullmatch(i) for i in ids)
    assert RFC3339.fullmatch(root.findtext("atom:updated", namespaces=NS) or "")


# RSS 2.0


def test_rss_meets_the_w3c_validators_rules() -> None:
    root = ET.fromstring(render("rss", FEED, ENTRIES, NOW, STORIES))
    assert root.tag == "rss"
    assert root.get("version") == "2.0"
    channel = root.find("channel")
    assert channel is not None
    for required in ("title", "link", "description"):  # MissingElement
        assert (channel.findtext(required) or "").strip()
    assert W3C_FULL_URI.fullmatch(channel.findtext("link") or "")
    assert W3C_RFC822.fullmatch(channel.findtext("lastBuildDate") or "")
    self_links = channel.findall("{http://www.w3.org/2005/Atom}link[@rel='self']")
    assert [x.get("href") for x in self_links] == ["http://127.0.0.1:8080/feeds/xa-hoi.rss"]
    items = channel.findall("item")
    assert len(items) == len(ENTRIES)
    guids = [check_rss_item(item) for item in items]
    assert len(set(guids)) == len(guids)


def check_rss_item(item: ET.Element) -> str:
    """Asserts the W3C validator's item errors; returns the guid."""
    assert item.findtext("title") or item.findtext("description")
    for name in ("title", "link", "description", "guid", "pubDate", "author", "enclosure"):
        assert len(item.findall(name)) <= 1, name  # DuplicateElement
    if item.find("link") is not None:
        assert W3C_FULL_URI.fullmatch(item.findtext("link") or "")
    guid = item.find("guid")
    assert guid is not None
    assert guid.text
    assert guid.get("isPermaLink") in ("true", "false")
    if guid.get("isPermaLink") == "true":  # InvalidHttpGUID, InvalidPermalink
        assert W3C_FULL_URI.fullmatch(guid.text)
        assert not guid.text.lower().startswith(("tag:", "urn:uuid:"))
    assert W3C_RFC822.fullmatch(item.findtext("pubDate") or "")
    if item.find("author") is not None:  # InvalidContact
        assert W3C_EMAIL.fullmatch(item.findtext("author") or "")
    for enclosure in item.findall("enclosure"):  # length > 0, a bare media type, a URL
        assert int(enclosure.get("length", "0")) > 0
        assert W3C_MIME.fullmatch(enclosure.get("type", ""))
        assert W3C_FULL_URI.fullmatch(enclosure.get("url", ""))
    media = "{http://search.yahoo.com/mrss/}"
    for element in item.findall(f"{media}content") + item.findall(f"{media}thumbnail"):
        assert W3C_FULL_URI.fullmatch(element.get("url", ""))
    return guid.text


# JSON Feed 1.1


def test_json_feed_has_what_the_1_1_spec_requires() -> None:
    document = json.loads(render("json", FEED, ENTRIES, NOW, STORIES))
    assert document["version"] == "https://jsonfeed.org/version/1.1"
    assert isinstance(document["title"], str)
    assert document["title"]
    for key in ("home_page_url", "feed_url"):
        assert W3C_FULL_URI.fullmatch(document[key])
    for author in document["authors"]:
        assert isinstance(author["name"], str)
    for hub in document.get("hubs", []):
        assert set(hub) == {"type", "url"}
    assert isinstance(document["items"], list)
    assert len(document["items"]) == len(ENTRIES)
    ids = [check_json_item(item) for item in document["items"]]
    assert len(set(ids)) == len(ids)
    for item in document["items"]:
        check_story_extension(item)


def check_json_item(item: dict[str, Any]) -> str:
    assert isinstance(item["id"], str)
    assert item["id"]
    assert isinstance(item.get("content_html"), str) or isinstance(item.get("content_text"), str)
    for key in ("url", "image"):
        assert key not in item or W3C_FULL_URI.fullmatch(item[key])
    for key in ("date_published", "date_modified"):
        assert RFC3339.fullmatch(item[key])
    assert all(isinstance(tag, str) for tag in item.get("tags", []))
    for attachment in item.get("attachments", []):
        assert W3C_FULL_URI.fullmatch(attachment["url"])
        assert W3C_MIME.fullmatch(attachment["mime_type"])
        assert isinstance(attachment.get("size_in_bytes", 0), int)
    return str(item["id"])


def check_story_extension(item: dict[str, Any]) -> None:
    """``_feedsvc``: each key only where it applies, with the types the issue gives."""
    extension = item.get("_feedsvc")
    if extension is None:
        return
    assert extension
    assert set(extension) <= {"series", "related", "also_reported_by"}
    if "series" in extension:
        series = extension["series"]
        assert set(series) == {"id", "title", "part", "parts"}
        assert isinstance(series["part"], int)
        assert series["id"] == series["parts"][0]
    assert all(isinstance(i, str) for i in extension.get("related", []))
    for other in extension.get("also_reported_by", []):
        assert isinstance(other["source"], str)
        assert "url" not in other or W3C_FULL_URI.fullmatch(other["url"])


def test_items_carry_their_story() -> None:
    document = json.loads(render("json", FEED, ENTRIES, NOW, STORIES))
    items = {item["id"]: item for item in document["items"]}
    for item in items.values():
        check_story_extension(item)
    first = items["https://baohatinh.example.vn/bai-1.html"]["_feedsvc"]
    assert first["series"]["parts"] == [
        "https://baohatinh.example.vn/bai-1.html",
        "https://baohatinh.example.vn/bai-5.html",
    ]
    assert len(first["related"]) == 4
    assert first["also_reported_by"] == [
        {"source": "Thanh Niên", "url": "https://baohatinh.example.vn/bai-5.html"},
        {"source": "Dân trí"},
    ]
    assert items["https://baohatinh.example.vn/bai-5.html"]["_feedsvc"]["series"]["part"] == 2
    assert "_feedsvc" not in items["https://baohatinh.example.vn/bai-7.html"]
    atom = ET.fromstring(render("atom", FEED, ENTRIES, NOW, STORIES))
    entry_1 = next(
        e for e in atom.findall("atom:entry", NS)
        if e.findtext("atom:id", namespaces=NS) == "https://baohatinh.example.vn/bai-1.html"
    )  # fmt: skip
    related = [x.get("href") for x in entry_1.findall("atom:link[@rel='related']", NS)]
    assert related == [
        "https://baohatinh.example.vn/bai-2.html",
        "https://baohatinh.example.vn/tin%20t%E1%BB%A9c/tr%E1%BA%BB-em.html",
        "https://baohatinh.example.vn/bai-6.html",
    ]
    content = entry_1.findtext("atom:content", namespaces=NS) or ""
    assert "Đọc thêm" in content
    assert "Cũng đưa tin" in content
    assert "<script>" not in content
    rss = ET.fromstring(render("rss", FEED, ENTRIES, NOW, STORIES))
    encoded = "{http://purl.org/rss/1.0/modules/content/}encoded"
    bodies = [
        item.findtext(encoded) or item.findtext("description") or "" for item in rss.iter("item")
    ]
    assert sum("Đọc thêm" in body for body in bodies) == 3
