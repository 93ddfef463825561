"""Ranking: exact tones above folded matches, then relevance, then recency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from feedsvc.search import Candidate, parse, rank

DAY = datetime(2026, 11, 1, tzinfo=UTC)


def ids(query: str, *candidates: Candidate) -> list[int]:
    return [r.entry_id for r in rank(parse(query), candidates, 10)]


def test_a_toned_query_puts_the_same_tones_first() -> None:
    lua = Candidate(1, "Giá lúa tăng", "", DAY)
    lua_other = Candidate(2, "Lừa đảo qua mạng, lừa đảo", "", DAY + timedelta(days=1))
    assert ids("lúa", lua, lua_other) == [1, 2]
    assert ids("lừa", lua, lua_other) == [2, 1]


def test_an_untoned_query_ranks_by_relevance() -> None:
    once = Candidate(1, "Tin ngắn", "trẻ em", DAY + timedelta(days=1))
    title = Candidate(2, "Trẻ em vùng lũ", "trẻ em được giúp", DAY)
    assert ids("tre em", once, title) == [2, 1]


def test_recency_breaks_ties() -> None:
    old = Candidate(1, "Đà Nẵng", "", DAY)
    new = Candidate(2, "Đà Nẵng", "", DAY + timedelta(hours=1))
    same_time = Candidate(3, "Đà Nẵng", "", DAY + timedelta(hours=1))
    assert ids("da nang", old, new, same_time) == [3, 2, 1]


def test_repeats_saturate() -> None:
    spam = Candidate(1, "x", "nang " * 200, DAY)
    title = Candidate(2, "Đà Nẵng nắng", "", DAY)
    assert ids("nang", spam, title) == [2, 1]


def test_phrases_and_prefixes_count_in_order() -> None:
    phrase = Candidate(1, "Đà Nẵng", "", DAY)
    apart = Candidate(2, "Nẵng và Đà", "", DAY + timedelta(days=1))
    ranked = rank(parse('"da nang"'), [phrase, apart], 10)
    assert ranked[0].entry_id == 1
    assert ranked[0].score > ranked[1].score == 0
    assert ids("giao*", Candidate(1, "x", "giáo", DAY), Candidate(2, "giao giáo", "", DAY)) == [
        2,
        1,
    ]


def test_the_limit_is_kept() -> None:
    many = [Candidate(n, "Đà Nẵng", "", DAY + timedelta(minutes=n)) for n in range(50)]
    assert ids("da nang", *many)[:3] == [49, 48, 47]
    assert len(rank(parse("da nang"), many, 5)) == 5
