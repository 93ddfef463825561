"""Snippets: the match marked in the toned text, everything escaped, a window around it."""

from __future__ import annotations

from feedsvc.search import highlight, parse


def test_folded_query_marks_the_toned_words() -> None:
    snippet = highlight("Hơn 200 trẻ em Đà Nẵng được tặng quà", parse("tre em da nang"))
    assert snippet.html() == (
        "Hơn 200 <mark>trẻ</mark> <mark>em</mark> <mark>Đà</mark> <mark>Nẵng</mark> được tặng quà"
    )


def test_prefix_marks_every_word_starting_so() -> None:
    snippet = highlight("Giáo dục và giao thông", parse("giao*"))
    assert snippet.html() == "<mark>Giáo</mark> dục và <mark>giao</mark> thông"


def test_text_is_escaped_and_marks_are_ours() -> None:
    snippet = highlight('<script>alert("x")</script> trẻ em & <b>', parse("tre"))
    html = snippet.html()
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "<mark>trẻ</mark>" in html
    assert html.count("<mark>") == 1


def test_a_long_text_shows_a_window_around_the_first_match() -> None:
    text = " ".join(f"từ{n}" for n in range(100)) + " Đà Nẵng " + "cuối " * 50
    snippet = highlight(text, parse("da nang"))
    assert snippet.text.startswith("…")
    assert snippet.text.endswith("…")
    assert "<mark>Đà</mark> <mark>Nẵng</mark>" in snippet.html()
    assert len(snippet.text.split()) <= 32


def test_no_match_in_the_text_shows_its_start_unmarked() -> None:
    snippet = highlight("Một bài viết dài " * 20, parse("tre"))
    assert "<mark>" not in snippet.html()
    assert snippet.text.startswith("Một bài viết dài")
    assert snippet.text.endswith("…")


def test_nfd_text_is_marked_in_nfc() -> None:
    import unicodedata

    snippet = highlight(unicodedata.normalize("NFD", "trẻ em"), parse("tre"))
    assert snippet.html() == "<mark>trẻ</mark> em"
