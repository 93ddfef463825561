"""Topics followed by email: the rules for a list of them, matching, and the digest section."""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from datetime import timedelta

import pytest

from feedsvc.config import Category, Config
from feedsvc.model import TOPICS_SECTION, Digest, Edition, EditionSection, Entry, Filed
from feedsvc.newsletter import archive, topics
from feedsvc.newsletter.select import select_digest
from feedsvc.newsletter.topics import TopicError, check_topics, phrases
from tests.conftest import NOW

SINCE, UNTIL = NOW - timedelta(days=1), NOW
CATEGORIES = [
    Category(id="xa-hoi", title="Xã hội"),
    Category(id="tre-em", title="Trẻ em"),
    Category(id="the-thao", title="Thể thao"),
]


def entry(n: int, title: str, summary: str = "", link: str | None = None) -> Entry:
    return Entry(
        id=n,
        source_id="s",
        identity=f"id-{n}",
        title=title,
        summary=summary,
        link=link or f"https://baohatinh.vn/{n}.html",
        first_seen=UNTIL - timedelta(hours=1),
        published=UNTIL - timedelta(minutes=n),
    )


def matches(topic: str, text: str) -> bool:
    return topics.matches(entry(1, text), phrases(check_topics([topic])), {})


# --- the rules --------------------------------------------------------------------------


def test_topics_are_kept_as_typed_in_nfc_and_deduped_by_their_folded_form() -> None:
    typed = [unicodedata.normalize("NFD", "Đà  Nẵng "), "da nang", "ĐÀ NẴNG", "", "  ", "bão"]
    assert check_topics(typed) == ("Đà Nẵng", "bão")
    assert all(unicodedata.is_normalized("NFC", t) for t in check_topics(typed))


def test_lines_and_semicolons_separate_topics() -> None:
    assert check_topics(["đà nẵng\r\nbão số 3; lũ lụt\n\n"]) == ("đà nẵng", "bão số 3", "lũ lụt")


def test_at_most_ten_topics() -> None:
    assert len(check_topics([f"chủ đề {n}" for n in range(10)])) == 10
    with pytest.raises(TopicError) as caught:
        check_topics([f"chủ đề {n}" for n in range(11)])
    assert caught.value.reason == topics.TOO_MANY
    # Duplicates do not count against the limit.
    assert len(check_topics([*(f"chủ đề {n}" for n in range(10)), "CHU DE 0"])) == 10


def test_a_topic_is_at_most_sixty_characters() -> None:
    assert check_topics(["ư" * 60]) == ("ư" * 60,)
    with pytest.raises(TopicError) as caught:
        check_topics(["ư" * 61])
    assert caught.value.reason == topics.TOO_LONG


@pytest.mark.parametrize("topic", ["!!!", "…", "— –"])
def test_a_topic_without_a_letter_or_digit_is_refused(topic: str) -> None:
    with pytest.raises(TopicError, match="letter or digit"):
        check_topics([topic])


# --- matching ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "text"),
    [
        ("đà nẵng", "Mưa lớn ở Đà Nẵng"),  # toned topic, toned text
        ("da nang", "Mưa lớn ở Đà Nẵng"),  # untoned topic
        ("ĐÀ NẴNG", "mua lon o da nang"),  # toned topic, text typed without tones
        ("Đà Nẵng", unicodedata.normalize("NFD", "Đà Nẵng đón khách")),  # NFD text
        (unicodedata.normalize("NFD", "đường sắt"), "DUONG SAT cao tốc"),
        ("đ", "Đ"),
        ("Đà Nẵng", "Tin nhanh: Đà-Nẵng, hôm nay"),  # punctuation is a boundary
        ("trẻ em", "Trẻ em vùng lũ"),
        ("covid-19", "Ca Covid 19 mới"),
    ],
)
def test_topics_match_folded_whole_words(topic: str, text: str) -> None:
    assert matches(topic, text)


@pytest.mark.parametrize(
    ("topic", "text"),
    [
        ("da", "Người dân vùng lũ"),  # "dân" folds to "dan": not the syllable "da"
        ("dan", "Đà Nẵng"),
        ("nang", "Đà Nẵngg"),  # not a whole syllable
        ("da nang", "Đà Lạt nắng ấm"),  # the words of a phrase in a row, not apart
        ("nẵng đà", "Đà Nẵng"),  # in order
        ("em", "Trẻem"),
    ],
)
def test_topics_do_not_match_inside_a_syllable_or_out_of_order(topic: str, text: str) -> None:
    assert not matches(topic, text)


def test_the_summary_counts_and_each_entry_is_folded_once() -> None:
    cache: dict[int, str] = {}
    story = entry(5, "Tin nóng", "Bão số 3 đổ bộ Đà Nẵng")
    assert topics.matches(story, phrases(["đà nẵng"]), cache)
    assert cache == {5: " tin nong bao so 3 do bo da nang "}
    assert not topics.matches(story, phrases(["hà tĩnh"]), cache)


# --- the digest section -----------------------------------------------------------------


def select(*items: Filed, wanted: tuple[str, ...], followed: tuple[str, ...] = ()) -> Digest:
    return select_digest(
        items,
        categories=CATEGORIES,
        wanted=wanted,
        since=SINCE,
        until=UNTIL,
        max_per_category=2,
        topics=phrases(followed),
        folded={},
    )


def sections(digest: Digest) -> list[tuple[str, list[int]]]:
    return [(s.category_id, [e.id for e in s.entries]) for s in digest.sections]


ITEMS = (
    Filed(entry(1, "Đà Nẵng đón bão"), frozenset({"xa-hoi"})),
    Filed(entry(2, "Trường học ở Hà Tĩnh"), frozenset({"xa-hoi", "tre-em"})),
    Filed(entry(3, "Trẻ em Đà Nẵng đến trường"), frozenset({"tre-em"})),
    Filed(entry(4, "SHB Đà Nẵng thắng"), frozenset({"the-thao"})),  # not their category
    Filed(entry(5, "Người dân Đà Lạt"), frozenset({"xa-hoi"})),
)


def test_topic_stories_come_first_from_every_category_and_move_out_of_their_sections() -> None:
    digest = select(*ITEMS, wanted=("xa-hoi", "tre-em"), followed=("đà nẵng",))
    assert sections(digest) == [(TOPICS_SECTION, [1, 3]), ("xa-hoi", [2, 5])]
    assert digest.sections[0].more == 1  # capped like a category; story 4 is counted
    assert [e.id for e in digest.sections[0].rest] == [4]
    every = [e.id for s in digest.sections for e in (*s.entries, *s.rest)]
    assert sorted(every) == [1, 2, 3, 4, 5]  # each story once


def test_without_topics_the_digest_is_as_before() -> None:
    digest = select(*ITEMS, wanted=("xa-hoi", "tre-em"))
    assert sections(digest) == [("xa-hoi", [1, 2]), ("tre-em", [3])]


def test_no_match_no_topics_section() -> None:
    digest = select(*ITEMS, wanted=("tre-em",), followed=("hà nội",))
    assert sections(digest) == [("tre-em", [2, 3])]


def test_only_topic_matches_still_make_a_digest() -> None:
    digest = select(*ITEMS, wanted=("the-thao",), followed=("trường học",))
    assert sections(digest) == [(TOPICS_SECTION, [2]), ("the-thao", [4])]


def test_a_story_from_two_sources_is_in_the_topics_section_once_and_nowhere_else() -> None:
    twin = Filed(
        replace(ITEMS[1].entry, id=9, source_id="other", first_seen=UNTIL - timedelta(minutes=5)),
        frozenset({"xa-hoi"}),
    )
    copy_of_1 = Filed(
        replace(ITEMS[0].entry, id=8, source_id="other", title="Bão vào miền Trung"),
        frozenset({"tre-em"}),
    )  # the same link as story 1, a title that does not match: still story 1
    digest = select(*ITEMS, twin, copy_of_1, wanted=("xa-hoi", "tre-em"), followed=("hà tĩnh",))
    assert sections(digest) == [(TOPICS_SECTION, [2]), ("xa-hoi", [1, 5]), ("tre-em", [3])]


def test_the_edition_page_names_the_topics_section_in_the_editions_language() -> None:
    config = Config.model_validate(
        {
            "site": {"title": "Báo Hà Tĩnh", "base_url": "https://tin.example.vn"},
            "categories": [{"id": "xa-hoi", "title": "Xã hội"}],
            "newsletter": {"from": "Bản tin <bantin@example.vn>"},
        }
    )
    for locale, title in (("vi", "Chủ đề bạn theo dõi"), ("en", "Your topics")):
        edition = Edition(
            "0123456789abcdef",
            "daily",
            UNTIL,
            locale,
            ("xa-hoi",),
            (EditionSection(TOPICS_SECTION, (1,)), EditionSection("xa-hoi", (2,))),
        )
        shown = archive.view(config, edition, {1: entry(1, "Đà Nẵng"), 2: entry(2, "Hà Tĩnh")})
        assert [(s[0], s[1]) for s in shown.sections][0] == (TOPICS_SECTION, title)
