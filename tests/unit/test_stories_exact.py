"""Exact story identity in ``stories.exact`` behaves as the copies it replaces.

``ingest.identity.normalize_link`` and ``publish.dedupe.dedupe`` move here at
merge; until then both exist, and these tests hold them to the same answers
(the cases are those of test_identity.py and test_dedupe.py).
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from feedsvc.ingest import identity
from feedsvc.model import Entry
from feedsvc.publish import dedupe as publish_dedupe
from feedsvc.stories import exact

NOW = datetime(2025, 6, 1, tzinfo=UTC)
TITLE = "Tăng cường sự lãnh đạo của Đảng đối với công tác bảo vệ trẻ em"
LINK = "https://baohatinh.example.vn/tang-cuong-bao-ve-tre-em.html"
URLS = [
    "HTTPS://BaoHaTinh.Example.VN:443/a.html#top",
    "http://baohatinh.example.vn:80/a?utm_source=x&id=2&utm_medium=rss",
    "https://baohatinh.example.vn",
    "https://user@[::1]:8443/a?b=1&a=2",
    "https://[::1/a",
    "/relative/path#frag",
    " https://baohatinh.example.vn/%E1%BA%A1/Path.html ",
    "https://baohatinh.example.vn:/a",
]


@pytest.mark.parametrize("url", URLS)
def test_normalize_link_agrees_with_ingest_identity(url: str) -> None:
    assert exact.normalize_link(url) == identity.normalize_link(url)


def entry(id: int, source: str, minutes: int, **fields: Any) -> Entry:
    fields.setdefault("title", TITLE)
    return Entry(
        id=id,
        source_id=source,
        identity=f"{source}:{id}",
        first_seen=NOW + timedelta(minutes=minutes),
        **fields,
    )


CASES = [
    [entry(1, "xa-hoi", 30, link=LINK), entry(2, "chinh-tri", 10, link=LINK.upper())],
    [entry(1, "xa-hoi", 0, link=LINK), entry(2, "home", 5, link=LINK + "?utm_source=home")],
    [entry(1, "a", 0, guid="12345", link="https://a.example/1"), entry(2, "b", 5, guid="12345")],
    [entry(1, "a", 0, guid="12345"), entry(2, "b", 5, guid="12345", title="Giá vàng hôm nay")],
    [
        entry(1, "xa-hoi", 20, guid=LINK),
        entry(2, "nfd", 10, guid=LINK, title=unicodedata.normalize("NFD", TITLE)),
    ],
    [
        entry(1, "a", 0, link="https://a.example/1"),
        entry(2, "b", 1, link="https://a.example/1", guid="g"),
        entry(3, "c", 2, guid="g"),
    ],
]


@pytest.mark.parametrize("entries", CASES)
def test_dedupe_agrees_with_publish_dedupe(entries: list[Entry]) -> None:
    assert exact.dedupe(entries) == publish_dedupe.dedupe(entries)


def test_exact_keys_match_for_a_utm_copy_and_not_for_another_title() -> None:
    keys = exact.exact_keys(LINK, None, TITLE)
    assert keys == exact.exact_keys(LINK + "?utm_medium=rss#top", None, "Another title")
    assert not exact.exact_keys(None, "12345", TITLE) & exact.exact_keys(None, "12345", "Khác")
    assert exact.exact_keys(None, "12345", TITLE) == exact.exact_keys(
        None, "12345", unicodedata.normalize("NFD", TITLE)
    )


def test_exact_keys_fit_a_signed_bigint() -> None:
    assert all(-(2**63) <= key < 2**63 for key in exact.exact_keys(LINK, "g", TITLE))
