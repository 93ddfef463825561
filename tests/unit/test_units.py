from datetime import timedelta

import pytest

from feedsvc._units import format_duration, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1.5h", 5400), (30, 30)],
)
def test_durations(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("text", "size"), [("512KB", 512_000), ("10MB", 10_000_000), ("1MiB", 1 << 20), (42, 42)]
)
def test_sizes(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["15 minutes", "m", "-1s", ""])
def test_bad_duration_says_how_to_write_one(bad: str) -> None:
    with pytest.raises(ValueError, match="e.g. 90s, 15m"):
        parse_duration(bad)


def test_format_duration_round_trips() -> None:
    assert format_duration(timedelta(minutes=15)) == "15m"
    assert parse_duration(format_duration(timedelta(hours=36))) == timedelta(hours=36)
