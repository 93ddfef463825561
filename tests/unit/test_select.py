"""Digest selection: first seen in the window, grouped in config order, each story once."""

from __future__ import annotations

from datetime import timedelta

from feedsvc.config import Category
from feedsvc.model import Digest, Entry, Filed
from feedsvc.newsletter.select import select_digest
from tests.conftest import NOW

SINCE, UNTIL = NOW - timedelta(days=1), NOW
CATEGORIES = [Category(id="xa-hoi", title="Xã hội"), Category(id="tre-em", title="Trẻ em")]


def filed(n: int, *categories: str, seen: timedelta = timedelta(hours=1), **extra: object) -> Filed:
    entry = Entry(
        id=n,
        source_id="s",
        identity=f"id-{n}",
        title=f"Tin {n}",
        link=f"https://baohatinh.vn/{n}.html",
        first_seen=UNTIL - seen,
        published=UNTIL - timedelta(minutes=n),
        **extra,  # type: ignore[arg-type]
    )
    return Filed(entry, frozenset(categories))


def select(
    *items: Filed, wanted: tuple[str, ...] = ("xa-hoi", "tre-em"), limit: int = 10
) -> Digest:
    return select_digest(
        items,
        categories=CATEGORIES,
        wanted=wanted,
        since=SINCE,
        until=UNTIL,
        max_per_category=limit,
    )


def ids(digest: Digest) -> list[list[int]]:
    return [[e.id for e in section.entries] for section in digest.sections]


def test_only_entries_first_seen_in_the_window() -> None:
    digest = select(
        filed(1, "xa-hoi"),
        filed(2, "xa-hoi", seen=timedelta(days=2)),  # seen before the window
        filed(3, "xa-hoi", seen=timedelta(hours=-1)),  # after it
    )
    assert ids(digest) == [[1]]


def test_updated_old_entries_and_backlog_are_not_new() -> None:
    edited = filed(1, "xa-hoi", seen=timedelta(days=3), revision=2, changed=UNTIL)
    backlog = filed(2, "xa-hoi", backlog=True)
    assert select(edited, backlog).empty


def test_grouped_in_config_order_and_each_story_once() -> None:
    digest = select(filed(1, "tre-em", "xa-hoi"), filed(2, "tre-em"), wanted=("tre-em", "xa-hoi"))
    assert [s.category_id for s in digest.sections] == ["xa-hoi", "tre-em"]
    assert ids(digest) == [[1], [2]]


def test_same_story_from_two_sources_appears_once() -> None:
    first = filed(1, "xa-hoi", seen=timedelta(hours=3))
    twin = Filed(
        Entry(
            id=2,
            source_id="other",
            identity="x",
            title="Tin 1",
            link="https://baohatinh.vn/1.html?utm_source=home",
            first_seen=UNTIL - timedelta(hours=1),
        ),
        frozenset({"xa-hoi"}),
    )
    assert ids(select(first, twin)) == [[1]]


def test_newest_first_and_capped_with_a_count_of_the_rest() -> None:
    digest = select(*(filed(n, "xa-hoi") for n in range(1, 6)), limit=3)
    assert ids(digest) == [[1, 2, 3]]  # published newest first: n minutes before UNTIL
    assert digest.sections[0].more == 2
    assert digest.count == 5


def test_only_the_subscribers_categories() -> None:
    assert select(filed(1, "xa-hoi"), wanted=("tre-em",)).empty
