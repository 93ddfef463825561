"""Text hygiene: NFC, no control or XML-invalid characters, one-line fields, folding."""

from __future__ import annotations

import unicodedata

import pytest

from feedsvc._text import clean_line, clean_text, fold_diacritics, remove_invalid_chars, shorten

NFC = "Tăng cường sự lãnh đạo của Đảng"


def test_clean_text_composes_nfd() -> None:
    assert clean_text(unicodedata.normalize("NFD", NFC)) == NFC


@pytest.mark.parametrize(
    "bad",
    ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1f", "\x7f", "\x80", "\x85", "\x9f"]
    + ["\ud800", "\udfff", "\ufffe", "\uffff"],
)
def test_clean_text_removes_control_and_xml_invalid_characters(bad: str) -> None:
    assert clean_text(f"Hà{bad}Tĩnh") == "HàTĩnh"


def test_clean_text_keeps_tabs_and_lines_and_folds_cr() -> None:
    assert clean_text("a\tb\r\nc\rd\ne") == "a\tb\nc\nd\ne"


def test_clean_text_keeps_characters_valid_in_xml() -> None:
    text = "€ “Hà Tĩnh” – 😀 \u00a0 \U0010fffd"
    assert clean_text(text) == text


def test_clean_line_is_one_trimmed_line() -> None:
    assert clean_line("\n  Tiêu đề\r\nBcc: x@example.com \t\u2028 cuối \n") == (
        "Tiêu đề Bcc: x@example.com cuối"
    )


def test_clean_line_composes_and_strips_controls() -> None:
    assert clean_line(unicodedata.normalize("NFD", f" {NFC}\x00 ")) == NFC


def test_remove_invalid_chars_does_not_normalize() -> None:
    # NFC could fuse ">" with U+0338 into "≯" and reopen a tag in sanitized HTML.
    assert remove_invalid_chars("<b>\u0338\x01</b>") == "<b>\u0338</b>"


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Đảng", "dang"),
        ("Hà Tĩnh", "ha tinh"),
        ("ĐƯỜNG ĐI", "duong di"),
        (unicodedata.normalize("NFD", "Giáo dục"), "giao duc"),
        ("Straße", "strasse"),
    ],
)
def test_fold_diacritics(text: str, folded: str) -> None:
    assert fold_diacritics(text) == folded


def test_shorten_keeps_short_text() -> None:
    assert shorten("Hà Tĩnh", 500) == "Hà Tĩnh"


def test_shorten_cuts_on_a_word_boundary() -> None:
    text = "Những ngày này, trên các cánh đồng ở huyện Cẩm Xuyên"
    short = shorten(text, 20)
    assert short == "Những ngày này…"  # "trên" fits, "trên…" would not; no dangling comma
    assert len(short) <= 20


def test_shorten_cuts_a_single_long_word_hard() -> None:
    assert shorten("a" * 50, 10) == "a" * 9 + "…"
