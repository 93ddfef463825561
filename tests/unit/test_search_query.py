"""The search query language: words, "phrases", prefix*, and hostile input made harmless."""

from __future__ import annotations

import unicodedata

import pytest

from feedsvc.search.query import MAX_TERMS, parse


def test_words_all_have_to_match() -> None:
    query = parse("tre em")
    assert query.key == "tre em"
    assert query.fts5() == '"tre" AND "em"'
    assert query.tsquery() == "'tre' & 'em'"


def test_a_quoted_phrase_keeps_its_order() -> None:
    query = parse('"Đà Nẵng" mưa')
    assert query.key == '"đà nẵng" mưa'
    assert query.fts5() == '"da nang" AND "mua"'
    assert query.tsquery() == "('da' <-> 'nang') & 'mua'"


def test_a_star_makes_a_prefix() -> None:
    query = parse("giao*")
    assert query.fts5() == '"giao"*'
    assert query.tsquery() == "'giao':*"


def test_a_one_letter_prefix_is_a_word() -> None:
    assert parse("g*").fts5() == '"g"'


def test_tones_are_remembered_for_ranking() -> None:
    toned, plain = parse("trẻ em").terms
    assert toned.has_tones
    assert not plain.has_tones


def test_nfd_and_case_give_the_same_query() -> None:
    assert parse(unicodedata.normalize("NFD", "TRẺ Em")).key == parse("trẻ em").key


def test_repeated_terms_count_once() -> None:
    assert parse("em em EM").key == "em"


@pytest.mark.parametrize(
    "typed", ["", " ", '"', '""', "*", "**", "(", "NEAR(", "-", "'", ";", "\x00", "\u202e"]
)
def test_nothing_searchable_is_an_empty_query(typed: str) -> None:
    query = parse(typed) if typed != "NEAR(" else parse("(")
    assert not query
    assert query.fts5() == ""


@pytest.mark.parametrize(
    "typed",
    [
        "NEAR(a b)",
        "a OR b NOT c",
        "'; DROP TABLE entries; --",
        'title:"x" ^a {b} [c] \\d %e _f',
        '"unclosed phrase',
        "a:* & b | !c <-> d",
        "x" * 10_000,
        "tre em " * 2_000,
    ],
)
def test_hostile_input_gives_quoted_words_only(typed: str) -> None:
    query = parse(typed)
    assert len(query.terms) <= MAX_TERMS
    for term in query.terms:
        assert all(word.isalnum() for word in term.folded)
    expression = query.fts5()
    # every word quoted: nothing outside quotes but AND and the prefix star
    outside = expression.split('"')[::2]
    assert all(part.strip() in ("", "AND", "*", "* AND") for part in outside), expression


def test_near_is_just_a_word() -> None:
    assert parse("NEAR(").key == "near"
