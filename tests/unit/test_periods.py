from datetime import UTC, datetime, timedelta

import pytest

from feedsvc.newsletter.periods import is_fire_time, latest_periods, next_fire

NOW = datetime(2026, 11, 29, 1, 30, tzinfo=UTC)  # 08:30 in Hà Nội


def test_daily_at_seven_local_time() -> None:
    assert latest_periods("0 7 * * *", "Asia/Ho_Chi_Minh", NOW) == (
        datetime(2026, 11, 28, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 29, 0, 0, tzinfo=UTC),
    )


def test_weekly_on_monday() -> None:
    previous, current = latest_periods("0 7 * * mon", "Asia/Ho_Chi_Minh", NOW)
    assert current == datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    assert (current - previous).days == 7


def test_now_exactly_at_a_fire_time_is_that_period() -> None:
    at_seven = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
    assert latest_periods("0 7 * * *", "Asia/Ho_Chi_Minh", at_seven)[1] == at_seven


def test_monthly_and_minutely() -> None:
    assert latest_periods("0 0 1 * *", "UTC", NOW)[1] == datetime(2026, 11, 1, tzinfo=UTC)
    assert latest_periods("*/5 * * * *", "UTC", NOW)[0] == datetime(2026, 11, 29, 1, 25, tzinfo=UTC)


def test_a_schedule_that_never_fires_is_an_error() -> None:
    with pytest.raises(ValueError, match="does not fire"):
        latest_periods("0 0 30 2 *", "UTC", NOW)


def test_the_next_fire_time_is_strictly_after_now() -> None:
    at_seven = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
    assert next_fire("0 7 * * *", "Asia/Ho_Chi_Minh", at_seven) == at_seven + timedelta(days=1)
    assert next_fire("0 7 * * *", "Asia/Ho_Chi_Minh", at_seven - timedelta(seconds=1)) == at_seven


def test_a_period_sent_now_is_not_a_fire_time() -> None:
    at_seven = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)
    assert is_fire_time("0 7 * * *", "Asia/Ho_Chi_Minh", at_seven)
    assert not is_fire_time("0 7 * * *", "Asia/Ho_Chi_Minh", at_seven + timedelta(minutes=3))
