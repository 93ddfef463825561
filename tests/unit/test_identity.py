"""Identity: guid, else normalized link, else fingerprint; content_hash for edits."""

from __future__ import annotations

import hashlib
import unicodedata

import pytest

from feedsvc.ingest.identity import FINGERPRINT_PREFIX, content_hash, entry_identity
from feedsvc.model import Enclosure
from feedsvc.stories.exact import normalize_link


@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        (
            "HTTPS://BaoHaTinh.Example.VN/Bai-Viet.html",
            "https://baohatinh.example.vn/Bai-Viet.html",
        ),
        ("https://baohatinh.example.vn:443/a", "https://baohatinh.example.vn/a"),
        ("http://baohatinh.example.vn:80/a", "http://baohatinh.example.vn/a"),
        ("http://baohatinh.example.vn:8080/a", "http://baohatinh.example.vn:8080/a"),
        ("https://baohatinh.example.vn:80/a", "https://baohatinh.example.vn:80/a"),
        ("https://baohatinh.example.vn/a#binh-luan", "https://baohatinh.example.vn/a"),
        (
            "https://baohatinh.example.vn/a?utm_source=rss&id=3&UTM_Medium=x&b=&utm_campaign",
            "https://baohatinh.example.vn/a?id=3&b=",
        ),
        ("https://baohatinh.example.vn/a?z=1&a=2", "https://baohatinh.example.vn/a?z=1&a=2"),
        ("https://baohatinh.example.vn/a?utm_source=rss", "https://baohatinh.example.vn/a"),
        ("https://baohatinh.example.vn", "https://baohatinh.example.vn/"),
        ("https://User@BaoHaTinh.example.vn/a", "https://User@baohatinh.example.vn/a"),
        ("http://[2001:DB8::1]:80/a", "http://[2001:db8::1]/a"),
        ("\n  https://baohatinh.example.vn/a  \n", "https://baohatinh.example.vn/a"),
        ("/relative/path#x", "/relative/path"),
        ("http://[broken/a", "http://[broken/a"),
    ],
)
def test_normalize_link(url: str, normalized: str) -> None:
    assert normalize_link(url) == normalized


def test_normalize_link_keeps_percent_encoding_and_path_case() -> None:
    url = "https://baohatinh.example.vn/T%E1%BB%95ng-k%E1%BA%BFt?q=H%C3%A0+T%C4%A9nh"
    assert normalize_link(url) == url


def test_identity_prefers_guid_then_link_then_fingerprint() -> None:
    link = "https://baohatinh.example.vn/a?utm_source=x"
    assert entry_identity("tag:x,2025:1", link, "t", "c") == "tag:x,2025:1"
    assert entry_identity(None, link, "t", "c") == "https://baohatinh.example.vn/a"
    fingerprint = entry_identity(None, None, "Tăng cường", "<p>Nội dung</p>")
    assert fingerprint.startswith(FINGERPRINT_PREFIX)
    assert len(fingerprint) == len(FINGERPRINT_PREFIX) + 64


def test_fingerprint_depends_on_title_and_content() -> None:
    base = entry_identity(None, None, "Tăng cường", "Nội dung")
    assert base == entry_identity(None, None, "Tăng cường", "Nội dung")
    assert base != entry_identity(None, None, "Tăng cường", "Nội dung khác")
    assert base != entry_identity(None, None, "Tăng cường\nNội", "dung")
    nfd = unicodedata.normalize("NFD", "Tăng cường")
    assert base != entry_identity(None, None, nfd, "Nội dung")  # callers pass NFC


SOUND = Enclosure("https://baohatinh.example.vn/sang.mp3", "audio/mpeg", 1200000)


@pytest.mark.parametrize(
    "other",
    [
        {"author": "Minh Tuấn"},
        {"enclosures": (Enclosure("https://baohatinh.example.vn/trua.mp3", "audio/mpeg", 9),)},
        {"enclosures": (Enclosure(SOUND.url, SOUND.type, 1),)},
        {"categories": ("Kinh tế",)},
        {"summary": "Tóm tắt khác"},
    ],
    ids=["author", "enclosure", "enclosure-length", "category", "summary"],
)
def test_fingerprint_sees_every_field_a_reader_sees(other: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "summary": "Tóm tắt",
        "author": "Thu Hà",
        "categories": ("Xã hội",),
        "enclosures": (SOUND,),
    }
    base = entry_identity(None, None, "Bản tin", "Nội dung", **fields)  # type: ignore[arg-type]
    changed = entry_identity(None, None, "Bản tin", "Nội dung", **(fields | other))  # type: ignore[arg-type]
    assert base.startswith(FINGERPRINT_PREFIX)
    assert changed != base


def test_fingerprint_of_title_and_content_alone_is_unchanged() -> None:
    # Stored before authors and enclosures counted: such entries must keep their identity.
    old = "sha256:" + hashlib.sha256("Tăng cường\nNội dung".encode()).hexdigest()
    assert entry_identity(None, None, "Tăng cường", "Nội dung") == old
    assert entry_identity(None, None, "Tăng cường", "Nội dung", author=None, summary="") == old


FIELDS = {
    "title": "Tiêu đề",
    "link": "https://baohatinh.example.vn/a",
    "summary": "Tóm tắt",
    "content": "<p>Nội dung</p>",
    "author": "Thu Hà",
    "categories": ("Xã hội",),
    "enclosures": (Enclosure("https://baohatinh.example.vn/a.mp3", "audio/mpeg", 10),),
}


def test_content_hash_is_stable() -> None:
    assert content_hash(**FIELDS) == content_hash(**dict(FIELDS))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "Tiêu đề (cập nhật)"),
        ("link", "https://baohatinh.example.vn/b"),
        ("summary", "Tóm tắt mới"),
        ("content", "<p>Nội dung mới</p>"),
        ("author", None),
        ("categories", ("Xã hội", "Kinh tế")),
        ("enclosures", ()),
    ],
)
def test_content_hash_changes_with_every_visible_field(field: str, value: object) -> None:
    changed = FIELDS | {field: value}
    assert content_hash(**changed) != content_hash(**FIELDS)  # type: ignore[arg-type]


def test_content_hash_fields_cannot_bleed_into_each_other() -> None:
    one = FIELDS | {"title": "ab", "summary": "c"}
    two = FIELDS | {"title": "a", "summary": "bc"}
    assert content_hash(**one) != content_hash(**two)  # type: ignore[arg-type]
