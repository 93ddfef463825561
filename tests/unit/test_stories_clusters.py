"""One story across sources: the decision over candidate pairs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from feedsvc.stories.clusters import choose_cluster, same_story
from feedsvc.stories.features import extract
from feedsvc.stories.model import ClusterCandidate, StoryFeatures, StoryText

WHEN = datetime(2025, 6, 2, 7, tzinfo=UTC)
FIRE = (
    "Khoảng 23h ngày 1/6, một xưởng sản xuất đồ gỗ tại xã Thạch Liên (huyện Thạch Hà) bốc "
    "cháy. Cảnh sát điều 4 xe chữa cháy cùng hơn 30 cán bộ, chiến sĩ; thiệt hại khoảng 3 tỷ đồng."
)


def features(entry_id: int, source: str, summary: str = FIRE, **fields: object) -> StoryFeatures:
    story = StoryText(entry_id, source, "Cháy xưởng gỗ ở Thạch Hà", WHEN, summary=summary)
    return extract(replace(story, **fields))  # type: ignore[arg-type]


def stored(f: StoryFeatures, cluster_id: int | None = None) -> ClusterCandidate:
    return ClusterCandidate(
        f.entry_id, f.source_id, f.published, cluster_id or f.entry_id,
        f.exact_keys, f.shingles, f.names,
    )  # fmt: skip


def test_a_copy_from_another_source_joins_the_stored_cluster() -> None:
    first = features(1, "baohatinh-xa-hoi")
    copy = features(7, "dantri-xa-hoi", summary=FIRE.replace("Khoảng 23h", "Lúc gần 23h"))
    cluster = choose_cluster(copy, [stored(first, cluster_id=1)])
    assert (cluster.cluster_id, cluster.matched) == (1, 1)


def test_the_same_source_never_makes_a_copy_of_itself() -> None:
    assert same_story(features(2, "a"), stored(features(1, "a"))) is None


def test_an_exact_key_is_the_same_story_even_from_one_source() -> None:
    link = "https://baohatinh.example.vn/chay.html"
    a = features(1, "a", link=link)
    b = features(2, "a", link=link + "?utm_source=x", summary="khác hẳn")
    assert same_story(b, stored(a)) == 1.0


def test_too_far_apart_in_time_is_another_story() -> None:
    late = features(2, "b", published=WHEN + timedelta(days=4))
    assert same_story(late, stored(features(1, "a"))) is None


def test_other_names_and_amounts_are_another_story() -> None:
    other = FIRE.replace("Thạch Liên", "Hưng Phúc").replace("Thạch Hà", "Nghi Lộc")
    other = other.replace("3 tỷ", "800 triệu").replace("30 cán bộ", "25 cán bộ")
    elsewhere = features(2, "b", summary=other, title="Cháy xưởng gỗ ở Nghi Lộc")
    assert same_story(elsewhere, stored(features(1, "a"))) is None


def test_a_new_story_is_its_own_cluster() -> None:
    assert choose_cluster(features(9, "a"), []).cluster_id == 9
