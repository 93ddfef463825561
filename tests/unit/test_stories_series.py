"""Series markers in titles, and which series a part joins."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from feedsvc.stories.model import SeriesCandidate, SeriesMarker, TermVector
from feedsvc.stories.series import choose_series, parse_marker

WHEN = datetime(2025, 5, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    ("title", "part", "rest"),
    [
        (
            "Bài 1: Quyết tâm về đích trước thời hạn của cả nước",
            1,
            "Quyết tâm về đích trước thời hạn của cả nước",
        ),
        ("Bài 2 - Huy động tổng lực", 2, "Huy động tổng lực"),
        ("Kỳ 3: Khi người dân cùng làm chủ rừng", 3, "Khi người dân cùng làm chủ rừng"),
        ("Phần 2", 2, ""),
        ("Coastal erosion in Hà Tĩnh, Part 2: Dykes", 2, "Dykes"),
        ("Xây dựng nông thôn mới (Bài 2)", 2, "Xây dựng nông thôn mới"),
        (
            "Làng nước mắm Vạn Phần tìm đường ra thị trường (Tiếp theo)",
            None,
            "Làng nước mắm Vạn Phần tìm đường ra thị trường",
        ),
        ("Bài cuối: Khát vọng vươn lên", None, "Khát vọng vươn lên"),
        ("Phần II: Những cánh rừng", 2, "Những cánh rừng"),
    ],
)
def test_markers_give_the_part_and_the_rest_of_the_title(
    title: str, part: int | None, rest: str
) -> None:
    marker = parse_marker(title)
    assert marker is not None
    assert (marker.part, marker.rest) == (part, rest)


def test_a_kicker_before_the_marker_is_the_series_title() -> None:
    marker = parse_marker("Giữ rừng Vũ Quang - Kỳ 2: Cuộc chiến với lâm tặc")
    assert marker == SeriesMarker(2, "giư rưng vu quang", "Cuộc chiến với lâm tặc")


@pytest.mark.parametrize(
    "title",
    [
        "Khai mạc Kỳ họp thứ 25 HĐND tỉnh Hà Tĩnh khóa XVIII",
        "Kỳ Anh: xe tải va chạm xe khách",
        "Bài học từ vụ cháy xưởng gỗ ở Thạch Hà",
        "Hà Tĩnh giải ngân 2 phần 3 vốn đầu tư công",
        "Làng nước mắm Vạn Phần giữ nghề",
        "Kỳ thi tốt nghiệp THPT năm 2025",
    ],
)
def test_words_that_only_look_like_markers_mark_nothing(title: str) -> None:
    assert parse_marker(title) is None


def part(entry_id: int, series_id: int, number: int, weights: dict[int, float]) -> SeriesCandidate:
    return SeriesCandidate(entry_id, series_id, number, "", WHEN, TermVector(weights))


def test_a_part_joins_the_similar_series_not_the_one_with_a_free_slot() -> None:
    housing = part(1, 1, 1, {10: 1.0})
    digital = part(2, 2, 1, {20: 1.0})
    joined = choose_series(3, SeriesMarker(2, "", ""), TermVector({10: 1.0}), [housing, digital])
    assert joined is not None
    assert (joined.series_id, joined.part, joined.matched) == (1, 2, 1)


def test_a_part_already_taken_starts_another_series() -> None:
    taken = part(1, 1, 2, {10: 1.0})
    found = choose_series(5, SeriesMarker(2, "", ""), TermVector({10: 1.0}), [taken])
    assert found is not None
    assert (found.series_id, found.part) == (5, 2)


def test_a_continuation_is_the_part_after_the_last() -> None:
    parts = [part(1, 1, 1, {10: 1.0}), part(2, 1, 2, {10: 1.0})]
    found = choose_series(3, SeriesMarker(None, "", ""), TermVector({10: 1.0}), parts)
    assert found is not None
    assert (found.series_id, found.part) == (1, 3)


def test_no_marker_no_series() -> None:
    assert choose_series(1, None, TermVector({}), []) is None
