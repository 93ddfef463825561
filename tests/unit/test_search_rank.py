"""Ranking: exact tones above folded matches, then relevance, then recency."""

from __future__ import annotations

from feedsvc.search import Candidate, index_words, parse, rank


def entry(entry_id: int, title: str, body: str = "") -> Candidate:
    """A candidate as the index gives it (folded words), with its caseless text."""
    words, title_words = index_words(title, body)
    return Candidate(entry_id, words, title_words, (title + "\n" + body).casefold())


def ids(query: str, *candidates: Candidate) -> list[int]:
    return [r.entry_id for r in rank(parse(query), candidates, 10)]


def test_a_toned_query_puts_the_same_tones_first() -> None:
    lua = entry(1, "Giá lúa tăng")
    lua_other = entry(2, "Lừa đảo qua mạng, lừa đảo")
    assert ids("lúa", lua, lua_other) == [1, 2]
    assert ids("lừa", lua, lua_other) == [2, 1]
    assert ids("lua", lua, lua_other) == [2, 1]  # no tones typed: relevance (two in a title)


def test_a_toned_phrase_and_prefix_count_as_typed() -> None:
    exact = entry(1, "Đà Nẵng mưa")
    folded = entry(2, "Da Nang, Da Nang")
    assert ids('"đà nẵng"', exact, folded) == [1, 2]
    assert ids("giá*", entry(1, "giáo viên"), entry(2, "giao thông giao")) == [1, 2]


def test_an_untoned_query_ranks_by_relevance() -> None:
    once = entry(2, "Tin ngắn", "trẻ em")
    title = entry(1, "Trẻ em vùng lũ", "trẻ em được giúp")
    assert ids("tre em", once, title) == [1, 2]


def test_the_newer_entry_breaks_ties() -> None:
    assert ids("da nang", entry(1, "Đà Nẵng"), entry(3, "Đà Nẵng"), entry(2, "Đà Nẵng")) == [
        3,
        2,
        1,
    ]


def test_repeats_saturate_and_a_title_weighs_more() -> None:
    spam = entry(2, "x", "nang " * 200)
    title = entry(1, "Đà Nẵng nắng")
    assert ids("nang", spam, title) == [1, 2]


def test_phrases_and_prefixes_count_in_order() -> None:
    phrase = entry(1, "Đà Nẵng")
    apart = entry(2, "Nẵng và Đà")
    ranked = rank(parse('"da nang"'), [phrase, apart], 10)
    assert ranked[0].entry_id == 1
    assert ranked[0].score > ranked[1].score == 0
    assert ids("giao*", entry(2, "x", "giáo"), entry(1, "giao giáo")) == [1, 2]


def test_the_limit_is_kept() -> None:
    many = [entry(n, "Đà Nẵng") for n in range(50)]
    assert ids("da nang", *many)[:3] == [49, 48, 47]
    assert len(rank(parse("da nang"), many, 5)) == 5
