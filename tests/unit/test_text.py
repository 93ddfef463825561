"""Text hygiene: NFC, no control or XML-invalid characters, one-line fields, folding."""

from __future__ import annotations

import unicodedata

import pytest

from feedsvc._text import (
    clean_line,
    clean_text,
    fold_diacritics,
    remove_invalid_chars,
    shorten,
    strip_invisible,
)

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


BIDI_CONTROLS = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\ufeff", "\u180e", "\u200e", "\u200f", "\u061c"]


@pytest.mark.parametrize("invisible", BIDI_CONTROLS + ZERO_WIDTH, ids=lambda c: f"U+{ord(c):04X}")
def test_clean_line_strips_bidi_controls_and_zero_width_characters(invisible: str) -> None:
    assert clean_line(f"Hà Tĩnh{invisible} tin{invisible}mới") == "Hà Tĩnh tinmới"
    assert strip_invisible(f"a{invisible}b") == "ab"


def test_word_joiner_is_kept_by_clean_line_and_stripped_from_publisher_text() -> None:
    # The renderer splits "@@" with U+2060 so feed text cannot pass for a placeholder,
    # then cleans the subject line again: clean_line must keep what it put there.
    assert clean_line("@\u2060@") == "@\u2060@"
    assert strip_invisible("tr\u2060ẻ em") == "trẻ em"


def test_clean_line_strips_an_override_spoofing_a_file_name() -> None:
    # U+202E shows "gpj.exe" as "exe.jpg" in a subject line.
    assert clean_line("Báo cáo \u202egpj.exe") == "Báo cáo gpj.exe"


@pytest.mark.parametrize(
    "emoji",
    [
        "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # family
        "\U0001f3f3\ufe0f\u200d\U0001f308",  # rainbow flag (VS16 before the ZWJ)
        "\U0001f469\U0001f3fd\u200d\U0001f4bb",  # technologist, skin tone before the ZWJ
        "\u2764\ufe0f\u200d\U0001f525",  # heart on fire
        "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # Scotland
    ],
)
def test_emoji_sequences_keep_their_joiners_and_tags(emoji: str) -> None:
    assert clean_line(f"Mừng {emoji}!") == f"Mừng {emoji}!"


def test_joiners_and_tags_outside_emoji_are_stripped() -> None:
    assert clean_line("a\u200d\U0001f525 \U0001f525\u200db") == "a\U0001f525 \U0001f525b"
    assert clean_line("tin\U000e0069\U000e0067\U000e006e mới") == "tin mới"  # "ASCII smuggling"


def test_clean_text_keeps_bidi_controls_in_multi_line_text() -> None:
    # Bodies are HTML, where an embedding ends with its paragraph; only one-line fields lose them.
    assert clean_text("\u202bשלום\u202c") == "\u202bשלום\u202c"


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
