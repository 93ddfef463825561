"""Digest selection: first seen in the window, grouped in config order, each story once."""

from __future__ import annotations

from datetime import timedelta

from feedsvc.config import Category
from feedsvc.model import TOPICS_SECTION, Digest, DigestStory, Entry, Filed, StoryRef
from feedsvc.newsletter.select import select_digest
from feedsvc.newsletter.topics import phrases
from feedsvc.stories.model import SeriesContext, StoryContext
from tests.conftest import NOW

SINCE, UNTIL = NOW - timedelta(days=1), NOW
CATEGORIES = [Category(id="xa-hoi", title="Xã hội"), Category(id="tre-em", title="Trẻ em")]


def filed(n: int, *categories: str, seen: timedelta = timedelta(hours=1), **extra: object) -> Filed:
    fields: dict[str, object] = {"title": f"Tin {n}", **extra}
    entry = Entry(
        id=n,
        source_id="s",
        identity=f"id-{n}",
        link=f"https://baohatinh.vn/{n}.html",
        first_seen=UNTIL - seen,
        published=UNTIL - timedelta(minutes=n),
        **fields,  # type: ignore[arg-type]
    )
    return Filed(entry, frozenset(categories))


def select(
    *items: Filed,
    wanted: tuple[str, ...] = ("xa-hoi", "tre-em"),
    limit: int = 10,
    stories: dict[int, StoryContext] | None = None,
    topics: tuple[str, ...] = (),
) -> Digest:
    return select_digest(
        items,
        categories=CATEGORIES,
        wanted=wanted,
        since=SINCE,
        until=UNTIL,
        max_per_category=limit,
        stories=stories or {},
        topics=phrases(topics),
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


# Stories (store.stories contexts): one story once, series together, related kept.


def test_a_story_from_several_outlets_comes_once_from_the_first_publisher() -> None:
    # Published at UNTIL - n minutes: 30 is the first of the three to publish.
    items = [filed(10, "xa-hoi"), filed(20, "xa-hoi"), filed(30, "xa-hoi"), filed(5, "xa-hoi")]
    others = (StoryRef(items[0].entry, "Tuổi Trẻ"), StoryRef(items[1].entry, "Thanh Niên"))
    stories = {
        10: StoryContext(cluster_id=10),
        20: StoryContext(cluster_id=10),
        30: StoryContext(cluster_id=10, also_reported_by=others),
        5: StoryContext(cluster_id=5),
    }
    digest = select(*items, wanted=("xa-hoi",), stories=stories)
    assert ids(digest) == [[5, 30]]
    assert digest.stories[30].also_reported_by == others
    assert 5 not in digest.stories


def test_a_series_shows_its_parts_together_in_part_order() -> None:
    items = [filed(n, "xa-hoi") for n in (1, 2, 3, 4)]  # 1 is the newest
    related = (StoryRef(items[3].entry, "Báo Hà Tĩnh"),)

    def part(n: int) -> SeriesContext:
        return SeriesContext(id=99, title="Bài 1", part=n, parts=())

    stories = {
        1: StoryContext(series=part(3), cluster_id=1),
        2: StoryContext(cluster_id=2, related=related),
        3: StoryContext(series=part(1), cluster_id=3),
        4: StoryContext(series=part(2), cluster_id=4),
    }
    digest = select(*items, wanted=("xa-hoi",), stories=stories)
    # Where the newest part was: Bài 1, Bài 2, Bài 3, then the next story.
    assert ids(digest) == [[3, 4, 1, 2]]
    assert digest.stories[3] == DigestStory(part=1, parts=(1, 2, 3))
    assert digest.stories[4] == DigestStory(part=2, continues=3)
    assert digest.stories[1] == DigestStory(part=3, continues=3)
    assert digest.stories[2].related == related


def test_a_topic_found_in_one_outlets_report_moves_the_whole_story_once() -> None:
    """The topics section takes a clustered story once (its first publisher), and no
    other outlet's report of it stays in a category section."""
    items = [
        filed(1, "xa-hoi", title="Cầu Rồng mở cửa đêm nay"),
        filed(2, "tre-em", title="Đà Nẵng: cầu Rồng phun lửa phục vụ du khách"),
        filed(3, "xa-hoi", title="Hà Tĩnh khởi công đường ven biển"),
    ]
    stories = {
        1: StoryContext(cluster_id=2),
        2: StoryContext(cluster_id=2),
        3: StoryContext(cluster_id=3),
    }
    # The matching report is filed where this reader does not read; another outlet's
    # report of the same story is in their category.
    digest = select(*items, wanted=("xa-hoi",), stories=stories, topics=("đà nẵng",))
    assert digest.sections[0].category_id == TOPICS_SECTION
    assert ids(digest) == [[2], [3]]  # the story once; its other report left out
