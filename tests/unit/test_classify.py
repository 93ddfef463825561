"""Which categories an entry is filed under: source, keywords, the source's own terms."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest

from feedsvc.classify import Classifier, categories_for
from feedsvc.config import Category
from feedsvc.model import Entry
from tests.conftest import NOW


def entry(title: str = "", summary: str = "", categories: tuple[str, ...] = ()) -> Entry:
    return Entry(
        id=1,
        source_id="src",
        identity="https://example.vn/a",
        title=title,
        first_seen=NOW,
        summary=summary,
        categories=categories,
    )


def category(id: str, **fields: Any) -> Category:
    return Category(id=id, title=id, **fields)


TRE_EM = category("tre-em", keywords=["trẻ em", "thiếu nhi"])
TRE_EM_FOLDED = category("tre-em", keywords=["tre em"], match_diacritics=False)
DA_NANG = category("da-nang", keywords=["Đà Nẵng"], match_diacritics=False)


def test_source_categories_are_kept_in_config_order() -> None:
    cats = [category("xa-hoi"), category("chinh-tri"), category("kinh-te")]
    assert categories_for(entry("x"), ["kinh-te", "xa-hoi"], cats) == ("xa-hoi", "kinh-te")


def test_unknown_source_category_is_ignored() -> None:
    assert categories_for(entry("x"), ["gone"], [category("xa-hoi")]) == ()


@pytest.mark.parametrize(
    "title",
    [
        "Bảo vệ trẻ em trong tình hình mới",
        "TRẺ EM vùng lũ",  # case does not matter
        "Chăm lo cho trẻ\u00a0em",  # any whitespace between the words
        "Ngày hội thiếu nhi",
        "Trẻ em.",
    ],
)
def test_keyword_matches_whole_words_with_diacritics(title: str) -> None:
    assert categories_for(entry(title), [], [TRE_EM]) == ("tre-em",)


@pytest.mark.parametrize(
    "title",
    [
        "Tre em vùng lũ",  # diacritics matter when match_diacritics is true
        "Chăm lo cho trẻ emm",  # not a substring of a longer word
        "Chăm lo cho trẻem",
        "Chuyện xtrẻ em",
        "trẻ_em",  # an underscore joins words
    ],
)
def test_keyword_does_not_match_without_its_diacritics_or_inside_words(title: str) -> None:
    assert categories_for(entry(title), [], [TRE_EM]) == ()


@pytest.mark.parametrize("title", ["Bảo vệ trẻ em", "bao ve tre em", "TRẺ EM", "Trẻ Em!"])
def test_folded_keyword_matches_with_or_without_accents(title: str) -> None:
    assert categories_for(entry(title), [], [TRE_EM_FOLDED]) == ("tre-em",)


def test_folded_keyword_still_needs_whole_words() -> None:
    assert categories_for(entry("trẻ emm"), [], [TRE_EM_FOLDED]) == ()
    assert categories_for(entry("tre embassy"), [], [TRE_EM_FOLDED]) == ()


@pytest.mark.parametrize("text", ["Mưa lớn ở da nang", "ĐÀ NẴNG mưa lớn", "đà nẵng", "Da Nang"])
def test_d_stroke_folds_to_d_on_both_sides(text: str) -> None:
    assert categories_for(entry(text), [], [DA_NANG]) == ("da-nang",)
    typed = category("da-nang", keywords=["da nang"], match_diacritics=False)
    assert categories_for(entry(text), [], [typed]) == ("da-nang",)


def test_d_stroke_is_a_letter_when_diacritics_matter() -> None:
    dang = category("dang", keywords=["Đảng"])
    assert categories_for(entry("Sự lãnh đạo của Đảng"), [], [dang]) == ("dang",)
    assert categories_for(entry("Sự lãnh đạo của Dang"), [], [dang]) == ()
    assert categories_for(entry("Đảngxyz"), [], [dang]) == ()


def test_keyword_in_summary_matches() -> None:
    found = categories_for(entry("Hội nghị", "Công tác bảo vệ trẻ em năm 2025"), [], [TRE_EM])
    assert found == ("tre-em",)


def test_keyword_does_not_match_across_title_and_summary() -> None:
    assert categories_for(entry("Chăm lo cho trẻ", "em bé vùng cao"), [], [TRE_EM]) == ()


def test_decomposed_keyword_matches_composed_text() -> None:
    nfd = category("tre-em", keywords=[unicodedata.normalize("NFD", "trẻ em")])
    assert categories_for(entry("Bảo vệ trẻ em"), [], [nfd]) == ("tre-em",)


def test_keyword_with_punctuation_matches_as_a_whole() -> None:
    tech = category("cong-nghe", keywords=["C++", "5G"])
    assert categories_for(entry("Lập trình C++ cho học sinh"), [], [tech]) == ("cong-nghe",)
    assert categories_for(entry("Mạng 5G phủ sóng"), [], [tech]) == ("cong-nghe",)
    assert categories_for(entry("Mạng 5GX"), [], [tech]) == ()


def test_feed_category_terms_match_caselessly() -> None:
    cat = category("xa-hoi", feed_categories=["Xã hội"])
    assert categories_for(entry("x", categories=("XÃ HỘI",)), [], [cat]) == ("xa-hoi",)
    nfd = unicodedata.normalize("NFD", "Xã  hội")
    assert categories_for(entry("x", categories=(nfd,)), [], [cat]) == ("xa-hoi",)
    assert categories_for(entry("x", categories=("Xa hoi",)), [], [cat]) == ()
    assert categories_for(entry("x", categories=("Xã hội mới",)), [], [cat]) == ()


def test_feed_category_terms_fold_when_diacritics_do_not_matter() -> None:
    cat = category("xa-hoi", feed_categories=["Xa hoi"], match_diacritics=False)
    assert categories_for(entry("x", categories=("Xã hội",)), [], [cat]) == ("xa-hoi",)


def test_feed_category_terms_are_not_keywords() -> None:
    cat = category("xa-hoi", feed_categories=["Xã hội"])
    assert categories_for(entry("Tin Xã hội hôm nay"), [], [cat]) == ()


def test_all_rules_combine_in_config_order() -> None:
    cats = [
        category("xa-hoi"),
        category("chinh-tri", feed_categories=["Chính trị"]),
        TRE_EM,
        DA_NANG,
        category("kinh-te", keywords=["giá vàng"]),
    ]
    found_entry = entry("Trẻ em Đà Nẵng đón Tết", categories=("Chính trị",))
    assert categories_for(found_entry, ["xa-hoi"], cats) == (
        "xa-hoi",
        "chinh-tri",
        "tre-em",
        "da-nang",
    )


def test_classifier_is_reusable_across_entries() -> None:
    classify = Classifier([TRE_EM, DA_NANG])
    assert classify(entry("trẻ em"), []) == ("tre-em",)
    assert classify(entry("da nang"), []) == ("da-nang",)
    assert classify(entry("thời tiết"), ["da-nang"]) == ("da-nang",)
