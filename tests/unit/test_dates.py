"""Entry dates: Vietnamese day-first formats, zones, and local time for zoneless dates."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from feedsvc.ingest._dates import choose_published, parse_date

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2026, 11, 28, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # what Vietnamese sites publish: day first, local time unless a zone is given
        ("Thứ Bảy, 28/11/2026 07:30", datetime(2026, 11, 28, 0, 30, tzinfo=UTC)),
        ("Thứ bảy, 10/05/2025 - 07:45", datetime(2025, 5, 10, 0, 45, tzinfo=UTC)),
        ("Chủ nhật, 11/05/2025 16:30", datetime(2025, 5, 11, 9, 30, tzinfo=UTC)),
        ("28/11/2026 07:30:00", datetime(2026, 11, 28, 0, 30, tzinfo=UTC)),
        ("10/05/2025 07:45:00", datetime(2025, 5, 10, 0, 45, tzinfo=UTC)),
        ("28-11-2026", datetime(2026, 11, 27, 17, 0, tzinfo=UTC)),
        ("2025-05-10 07:45:00", datetime(2025, 5, 10, 0, 45, tzinfo=UTC)),
        ("10/05/2025 07:45 (GMT+7)", datetime(2025, 5, 10, 0, 45, tzinfo=UTC)),
        ("10/05/2025 07:45 GMT+7", datetime(2025, 5, 10, 0, 45, tzinfo=UTC)),
        ("10/05/2025 07:45:00 +07:00", datetime(2025, 5, 10, 0, 45, tzinfo=UTC)),
        ("10/05/2025 07:45 ICT", datetime(2025, 5, 10, 0, 45, tzinfo=UTC)),
        ("10/05/2025 07:45 GMT", datetime(2025, 5, 10, 7, 45, tzinfo=UTC)),
        # RFC 822 and ISO 8601
        ("Sat, 10 May 2025 07:45:00 +0700", datetime(2025, 5, 10, 0, 45, tzinfo=UTC)),
        ("Sat, 10 May 2025 07:45:00 ICT", datetime(2025, 5, 10, 0, 45, tzinfo=UTC)),
        ("Sat, 10 May 2025 07:45:00 GMT", datetime(2025, 5, 10, 7, 45, tzinfo=UTC)),
        ("Sat, 10 May 2025 07:45:00 EDT", datetime(2025, 5, 10, 11, 45, tzinfo=UTC)),
        ("Sat, 10 May 2025 07:45:00 -0000", datetime(2025, 5, 10, 7, 45, tzinfo=UTC)),
        ("Sat, 10 May 2025 07:45:00", datetime(2025, 5, 10, 0, 45, tzinfo=UTC)),
        ("10 May 25 07:45", datetime(2025, 5, 10, 0, 45, tzinfo=UTC)),
        ("2025-05-01T08:00:00+07:00", datetime(2025, 5, 1, 1, 0, tzinfo=UTC)),
        ("2025-05-11T23:30:00Z", datetime(2025, 5, 11, 23, 30, tzinfo=UTC)),
        ("2025-05-11T23:30:00.250Z", datetime(2025, 5, 11, 23, 30, tzinfo=UTC)),
        ("2025-05-10T07:45", datetime(2025, 5, 10, 0, 45, tzinfo=UTC)),
        ("2025/05/10 07:45:00 +0700", datetime(2025, 5, 10, 0, 45, tzinfo=UTC)),
        ("  2025-05-10\n07:45:00 ", datetime(2025, 5, 10, 0, 45, tzinfo=UTC)),
    ],
)
def test_formats_read_day_first_in_source_zone(raw: str, expected: datetime) -> None:
    assert parse_date(raw, HANOI) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "hôm qua",
        "31/02/2025",
        "05/28/2026 10:00",
        "10/05/2025 25:00",
        "Sat, 10 Foo 2025",
    ],
)
def test_unreadable_dates_are_none(raw: str) -> None:
    assert parse_date(raw, HANOI) is None


def test_zone_of_the_source_decides_zoneless_dates() -> None:
    paris = parse_date("10/05/2025 07:45", ZoneInfo("Europe/Paris"))
    assert paris == datetime(2025, 5, 10, 5, 45, tzinfo=UTC)


def test_feedparser_fallback_reread_as_local_time_when_zoneless() -> None:
    # asctime is a format only feedparser reads; it reports the wall time as UTC.
    as_utc = time.struct_time((2025, 5, 10, 7, 45, 0, 5, 130, 0))
    assert parse_date("Sat May 10 07:45:00 2025", HANOI, as_utc) == datetime(
        2025, 5, 10, 0, 45, tzinfo=UTC
    )
    shifted = time.struct_time((2025, 5, 10, 0, 45, 0, 5, 130, 0))
    assert parse_date("Sat May 10 07:45:00 +0700 2025", HANOI, shifted) == datetime(
        2025, 5, 10, 0, 45, tzinfo=UTC
    )


def test_unknown_zone_name_falls_back_to_feedparser() -> None:
    theirs = time.struct_time((2025, 5, 10, 5, 45, 0, 5, 130, 0))
    assert parse_date("Sat, 10 May 2025 07:45:00 CEST", HANOI, theirs) == datetime(
        2025, 5, 10, 5, 45, tzinfo=UTC
    )
    assert parse_date("Sat, 10 May 2025 07:45:00 CEST", HANOI) is None


def test_leap_second_is_clamped() -> None:
    assert parse_date("2016-12-31T23:59:60Z", HANOI) == datetime(
        2016, 12, 31, 23, 59, 59, tzinfo=UTC
    )


def test_first_readable_candidate_wins() -> None:
    published, flag = choose_published(
        [("không rõ", None), ("2025-05-10T00:00:00Z", None)], HANOI, NOW
    )
    assert (published, flag) == (datetime(2025, 5, 10, tzinfo=UTC), None)


@pytest.mark.parametrize(
    ("candidates", "flag"),
    [
        ([(None, None), ("", None)], "missing"),
        ([("không rõ", None), (None, None)], "unparseable"),
        ([("2026-11-29T00:00:01Z", None)], "future"),
    ],
)
def test_no_usable_date_is_flagged(
    candidates: list[tuple[str | None, time.struct_time | None]], flag: str
) -> None:
    assert choose_published(candidates, HANOI, NOW) == (None, flag)


def test_up_to_a_day_ahead_is_tolerated() -> None:
    ahead = (NOW + timedelta(hours=23)).isoformat()
    assert choose_published([(ahead, None)], HANOI, NOW) == (NOW + timedelta(hours=23), None)


@pytest.mark.parametrize("letter", [*"ABCDEFGHIKLMNOPQRSTUVWXY", *"gqz"])
def test_military_zones_mean_utc(letter: str) -> None:
    # RFC 1123 5.2.14 and RFC 2822 4.3: their signs were published wrong, so they carry
    # no information and read as -0000; feedparser reads G, L, Q... as UTC as well.
    assert parse_date(f"Sat, 10 May 2025 07:45:00 {letter}", HANOI) == datetime(
        2025, 5, 10, 7, 45, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2002-12-31T192030+01:00", datetime(2002, 12, 31, 18, 20, 30, tzinfo=UTC)),
        ("2002-12-31T192030.5+0100", datetime(2002, 12, 31, 18, 20, 30, tzinfo=UTC)),
        ("2002-12-31T1920+01:00", datetime(2002, 12, 31, 18, 20, tzinfo=UTC)),
        ("2002-12-31T192030Z", datetime(2002, 12, 31, 19, 20, 30, tzinfo=UTC)),
        ("20021231T192030Z", datetime(2002, 12, 31, 19, 20, 30, tzinfo=UTC)),
        ("20021231T192030+0100", datetime(2002, 12, 31, 18, 20, 30, tzinfo=UTC)),
        ("2002-12-31T192030", datetime(2002, 12, 31, 12, 20, 30, tzinfo=UTC)),  # local
        ("2002-12-31T19+01:00", datetime(2002, 12, 31, 18, 0, tzinfo=UTC)),  # hour only
    ],
)
def test_iso_times_without_colons_are_read(raw: str, expected: datetime) -> None:
    assert parse_date(raw, HANOI) == expected


@pytest.mark.parametrize(
    "raw", ["2002-12-31T1", "2002-12-31T19203+01:00", "2002-12-31T19:2030", "2002-12-31T25:00"]
)
def test_iso_time_we_cannot_read_is_never_another_time(raw: str) -> None:
    # feedparser reads these as midnight of that day: a different time, so not at all.
    theirs = time.struct_time((2002, 12, 31, 0, 0, 0, 1, 365, 0))
    assert parse_date(raw, HANOI, theirs) is None
    published, flag = choose_published([(raw, theirs)], HANOI, NOW)
    assert (published, flag) == (None, "unparseable")


@pytest.mark.parametrize("raw", ["2002-12-31", "20021231", "31/12/2002"])
def test_date_only_is_midnight_in_the_source_zone(raw: str) -> None:
    assert parse_date(raw, HANOI) == datetime(2002, 12, 30, 17, 0, tzinfo=UTC)
