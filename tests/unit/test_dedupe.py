"""One copy of each story across sources, always the one seen first."""

from __future__ import annotations

import unicodedata
from datetime import timedelta
from typing import Any

from feedsvc.model import Entry
from feedsvc.stories.exact import dedupe
from tests.conftest import NOW

TITLE = "Tăng cường sự lãnh đạo của Đảng đối với công tác bảo vệ trẻ em"
LINK = "https://baohatinh.example.vn/tang-cuong-bao-ve-tre-em.html"


def entry(id: int, source: str, minutes: int, **fields: Any) -> Entry:
    fields.setdefault("title", TITLE)
    return Entry(
        id=id,
        source_id=source,
        identity=f"{source}:{id}",
        first_seen=NOW + timedelta(minutes=minutes),
        **fields,
    )


def ids(entries: list[Entry]) -> list[int]:
    return [e.id for e in entries]


def test_same_normalized_link_keeps_the_earliest_seen() -> None:
    late = entry(1, "xa-hoi", 30, link=LINK)
    early = entry(
        2, "chinh-tri", 10, link="HTTPS://BaoHaTinh.Example.VN/tang-cuong-bao-ve-tre-em.html#top"
    )
    assert ids(dedupe([late, early])) == [2]


def test_utm_copy_from_the_home_page_is_the_same_story() -> None:
    section = entry(1, "xa-hoi", 0, link=LINK)
    home = entry(2, "trang-chu", 5, link=LINK + "?utm_source=home&utm_medium=rss")
    assert ids(dedupe([home, section])) == [1]


def test_same_guid_and_same_nfc_title_is_the_same_story() -> None:
    a = entry(1, "xa-hoi", 0, guid="12345", link="https://a.example/1")
    b = entry(2, "mirror", 5, guid="12345", link="https://b.example/1")
    assert ids(dedupe([b, a])) == [1]


def test_same_guid_with_another_title_is_another_story() -> None:
    a = entry(1, "xa-hoi", 0, guid="12345")
    b = entry(2, "kinh-te", 5, guid="12345", title="Giá vàng hôm nay")
    assert ids(dedupe([a, b])) == [1, 2]


def test_nfd_twin_is_the_same_story_as_its_nfc_original() -> None:
    nfc = entry(1, "xa-hoi", 20, guid=LINK)
    nfd = entry(2, "xa-hoi-nfd", 10, guid=LINK, title=unicodedata.normalize("NFD", TITLE))
    assert nfd.title != nfc.title
    assert ids(dedupe([nfc, nfd])) == [2]


def test_same_title_alone_is_not_the_same_story() -> None:
    today = entry(1, "thoi-tiet", 0, title="Thời tiết hôm nay", link="https://a.example/1")
    tomorrow = entry(2, "thoi-tiet", 60, title="Thời tiết hôm nay", link="https://a.example/2")
    assert ids(dedupe([today, tomorrow])) == [1, 2]


def test_equal_first_seen_keeps_the_smaller_id() -> None:
    a = entry(7, "xa-hoi", 0, link=LINK)
    b = entry(3, "chinh-tri", 0, link=LINK)
    assert ids(dedupe([a, b])) == [3]


def test_twin_of_a_twin_is_the_same_story() -> None:
    # b shares a's link, c shares b's guid and title: one story, whoever came first.
    a = entry(1, "xa-hoi", 20, link=LINK)
    b = entry(2, "chinh-tri", 30, link=LINK + "?utm_campaign=x", guid="g-1")
    c = entry(3, "trang-chu", 10, guid="g-1", link="https://mirror.example/x")
    assert ids(dedupe([a, b, c])) == [3]


def test_kept_entries_stay_in_input_order() -> None:
    first = entry(1, "a", 50, link="https://a.example/1")
    second = entry(2, "b", 0, link="https://a.example/2")
    twin = entry(3, "c", 60, link="https://a.example/1")
    assert ids(dedupe([first, second, twin])) == [1, 2]


def test_entries_without_link_or_guid_are_all_kept() -> None:
    assert ids(dedupe([entry(1, "a", 0), entry(2, "b", 0)])) == [1, 2]


def test_kept_copy_does_not_change_when_a_later_twin_arrives() -> None:
    first = entry(1, "xa-hoi", 0, link=LINK)
    assert dedupe([first]) == [first]
    later = entry(9, "trang-chu", 90, link=LINK + "?utm_source=x")
    assert dedupe([later, first]) == [first]
