"""Syllables for matching: tones folded, vowels kept, stop syllables known by their tones."""

from __future__ import annotations

import unicodedata

from feedsvc.stories.syllables import fold, plain_text, syllables


def texts(text: str) -> list[str]:
    return [s.text for s in syllables(text)]


def test_tone_placement_variants_fold_alike() -> None:
    assert fold("hòa") == fold("hoà") == "hoa"
    assert fold("thủy") == fold("thuỷ") == "thuy"


def test_vowel_letters_and_d_stroke_are_kept() -> None:
    assert fold("mưa") != fold("mua")
    assert fold("Đường") == "đương"


def test_nfd_input_gives_the_same_syllables() -> None:
    title = "Hà Tĩnh hoàn thành xóa nhà tạm"
    assert texts(unicodedata.normalize("NFD", title)) == texts(title)


def test_numbers_drop_thousands_separators_and_split_dates() -> None:
    assert texts("2.343 ngôi nhà trước 19/5/2025") == [
        "2343",
        "ngôi",
        "nha",
        "trươc",
        "19",
        "5",
        "2025",
    ]
    assert texts("19-5") == texts("19.5") == ["19", "5"]


def test_stop_syllables_are_decided_before_folding() -> None:
    # "tại" (at) is a stop syllable, "tai" (of "tai nạn", accident) is not; both fold to "tai".
    assert [s.stop for s in syllables("tại tai và va")] == [True, False, True, False]


def test_names_are_capitals_that_do_not_start_a_sentence() -> None:
    names = [
        s.text
        for s in syllables("Sáng 17/5, tỉnh Hà Tĩnh họp. Tổng kinh phí lớn (TTXVN)")
        if s.name
    ]
    assert names == ["ha", "tinh"]


def test_plain_text_strips_markup_and_entities() -> None:
    assert plain_text('<p>Sở LĐTB&amp;XH <a href="x">tỉnh</a></p>') == " Sở LĐTB&XH  tỉnh  "
