"""Folding for search: every Vietnamese letter, both cases, NFC or NFD, folds to its base."""

from __future__ import annotations

import unicodedata

import pytest

from feedsvc.search.fold import MAX_WORD, fold, index_text, words

VOWELS = {"a": "aăâ", "e": "eê", "i": "i", "o": "oôơ", "u": "uư", "y": "y"}
TONES = ("", "\u0300", "\u0301", "\u0309", "\u0303", "\u0323")  # ngang huyền sắc hỏi ngã nặng


def vietnamese_letters() -> list[tuple[str, str]]:
    """(letter, base) for every precomposed Vietnamese vowel with its tone, both cases."""
    letters = []
    for base, vowels in VOWELS.items():
        for vowel in vowels:
            for tone in TONES:
                letter = unicodedata.normalize("NFC", vowel + tone)
                assert len(letter) == 1, letter  # precomposed
                letters += [(letter, base), (letter.upper(), base)]
    return letters + [("đ", "d"), ("Đ", "d")]


def test_there_are_all_the_letters() -> None:
    assert len(vietnamese_letters()) == 12 * 6 * 2 + 2


@pytest.mark.parametrize(("letter", "base"), vietnamese_letters())
def test_every_letter_folds_to_its_base_in_nfc_and_nfd(letter: str, base: str) -> None:
    assert fold(letter) == base
    assert fold(unicodedata.normalize("NFD", letter)) == base


@pytest.mark.parametrize(
    ("written", "typed"),
    [
        ("trẻ em", "tre em"),
        ("Đà Nẵng", "da nang"),
        ("đường", "DUONG"),
        ("Thừa Thiên Huế", "THUA THIEN HUE"),
        ("Nghệ An", "nghe an"),
        ("mưa lũ", "mua lu"),
    ],
)
def test_toned_and_typed_fold_alike(written: str, typed: str) -> None:
    assert fold(written) == fold(typed)


def test_nfd_text_is_indexed_like_nfc() -> None:
    title = "Đà Nẵng đón khách"
    assert index_text(unicodedata.normalize("NFD", title), "") == index_text(title, "")
    assert index_text(title, "") == "da nang don khach"


def test_words_keep_offsets_into_the_toned_text() -> None:
    text = "Hội An, Đà Nẵng: trẻ em!"
    found = list(words(text))
    assert [text[w.start : w.end] for w in found] == ["Hội", "An", "Đà", "Nẵng", "trẻ", "em"]
    assert [w.toned for w in found][:2] == ["hội", "an"]
    assert [w.folded for w in found][2:4] == ["da", "nang"]


def test_punctuation_and_very_long_runs_are_not_words() -> None:
    assert (
        index_text("COVID-19: 2.343 ca; " + "x" * (MAX_WORD + 1), "a_b") == "covid 19 2 343 ca a b"
    )


def test_other_scripts_fold_too() -> None:
    assert fold("Ελληνικά Straße") == "ελληνικα strasse"
