"""Subscriber CSV: every bad row reported by line, the good ones kept."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from feedsvc import config as config_module
from feedsvc.config import Config
from feedsvc.model import Subscriber, SubscriberStatus
from feedsvc.newsletter import roster
from tests.conftest import NOW

CONFIG = """\
site:
  title: "Bản tin"
  base_url: "http://127.0.0.1:8080"
categories:
  - id: xa-hoi
    title: "Xã hội"
  - id: tre-em
    title: "Trẻ em"
newsletter:
  schedules:
    daily: "0 7 * * *"
    weekly: "0 7 * * mon"
"""


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return config_module.parse(CONFIG, tmp_path / "config.yaml")


def test_import_reports_bad_rows_by_line_and_keeps_the_rest(config: Config) -> None:
    text = (
        "email,categories,schedule,locale\n"
        "An.Nguyen@BaoHaTinh.VN,xa-hoi tre-em,weekly,en\n"
        "not-an-address,xa-hoi,daily,vi\n"
        "binh@example.vn,the-thao,daily,vi\n"
        "\n"
        "chi@example.vn,tre-em,,\n"
        "dung@example.vn,xa-hoi,daily,fr\n"
    )
    rows, problems = roster.read_csv(config, text)
    signups = [row.signup for row in rows]
    assert [(s.email, s.categories, s.schedule, s.locale) for s in signups] == [
        ("An.Nguyen@baohatinh.vn", ("xa-hoi", "tre-em"), "weekly", "en"),
        ("chi@example.vn", ("tre-em",), "daily", "vi"),  # defaults filled in
    ]
    assert [p.split(":")[0] for p in problems] == ["line 3", "line 4", "line 7"]
    assert "unknown categories: the-thao" in problems[1]


def reader(email: str, **changes: object) -> Subscriber:
    base = Subscriber(
        id=1,
        email=email,
        status=SubscriberStatus.ACTIVE,
        categories=("tre-em", "xa-hoi"),
        schedule="weekly",
        locale="en",
        timezone="Asia/Ho_Chi_Minh",
        created_at=NOW - timedelta(days=30),
        confirmed_at=NOW,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_export_then_import_round_trips(config: Config) -> None:
    readers = [
        reader("trang@example.vn", topics=("=SUM(A1)", "đà nẵng", "bão số 3")),
        reader("cho@example.vn", status=SubscriberStatus.PENDING, confirmed_at=None),
        reader("da.di@example.vn", status=SubscriberStatus.UNSUBSCRIBED),
    ]
    text = roster.write_csv(readers)
    assert text.splitlines()[0] == (
        "email,categories,schedule,locale,status,created_at,confirmed_at,topics"
    )
    assert text.splitlines()[1].endswith(",'=SUM(A1); đà nẵng; bão số 3")
    rows, problems = roster.read_csv(config, text)
    assert problems == []
    assert [
        (r.signup.email, r.signup.categories, r.status, r.created_at, r.confirmed_at)
        + (r.signup.topics,)
        for r in rows
    ] == [
        (s.email, s.categories, s.status, s.created_at, s.confirmed_at, s.topics) for s in readers
    ]


def test_seven_column_files_from_before_topics_still_import(config: Config) -> None:
    text = "email,categories,schedule,locale,status,created_at,confirmed_at\n"
    text += "trang@example.vn,tre-em,weekly,en,active,2026-11-01T00:00:00+00:00,\n"
    [row], problems = roster.read_csv(config, text)
    assert problems == []
    assert (row.status, row.signup.topics) == (SubscriberStatus.ACTIVE, ())


def test_a_bad_topics_cell_is_reported_by_line(config: Config) -> None:
    many = "; ".join(f"chủ đề {n}" for n in range(11))
    text = f"a@example.vn,xa-hoi,daily,vi,,,,{many}\n"
    text += "b@example.vn,xa-hoi,daily,vi,,,,Đà Nẵng; da nang\n"
    rows, problems = roster.read_csv(config, text)
    assert problems == ["line 1: Follow at most 10 topics."]
    assert [row.signup.topics for row in rows] == [("Đà Nẵng",)]  # the same topic once


def test_old_four_column_files_still_import(config: Config) -> None:
    [row], problems = roster.read_csv(config, "trang@example.vn,tre-em xa-hoi,weekly,en\n")
    assert problems == []
    assert (row.status, row.created_at, row.confirmed_at) == (None, None, None)
    assert row.signup.categories == ("tre-em", "xa-hoi")


def test_bad_status_or_time_is_reported_by_line(config: Config) -> None:
    text = "a@example.vn,xa-hoi,daily,vi,gone,,\nb@example.vn,xa-hoi,daily,vi,active,hôm qua,\n"
    rows, problems = roster.read_csv(config, text)
    assert rows == []
    assert problems[0].startswith("line 1: unknown status 'gone'")
    assert problems[1].startswith("line 2: created_at 'hôm qua'")


@pytest.mark.parametrize(
    "cell", ["=1+2", "+84 912", "-2+3", "@SUM(A1)", "\tx", "\rx", "'=x", "''-x"]
)
def test_formula_cells_are_neutralised_and_come_back(cell: str) -> None:
    """OWASP CSV injection: a leading quote, so no spreadsheet runs the cell."""
    quoted = roster.quote(cell)
    assert quoted.startswith("'")
    assert roster.unquote(quoted) == cell


@pytest.mark.parametrize("cell", ["an@example.vn", "'ordinary", "", "2026-11-28T01:00:00+00:00"])
def test_ordinary_cells_are_written_as_they_are(cell: str) -> None:
    assert roster.quote(cell) == cell
    assert roster.unquote(cell) == cell


def test_an_export_has_no_formula_cells(config: Config) -> None:
    text = roster.write_csv([reader("=cmd|calc!A0@example.vn"), reader("-1@example.vn")])
    for line in text.splitlines()[1:]:
        assert line[0] not in "=+-@"
    rows, _ = roster.read_csv(config, text)
    assert [row.signup.email for row in rows] == ["=cmd|calc!A0@example.vn", "-1@example.vn"]


def test_smtputf8_is_needed_for_a_non_ascii_local_part_only() -> None:
    assert roster.check_address("nguyễn@example.vn").smtputf8
    assert not roster.check_address("nguyen@bücher.example").smtputf8


def test_unicode_domain_is_accepted_and_normalized() -> None:
    assert roster.normalize_email(" an@BẢOHÀTĨNH.vn ") == "an@bảohàtĩnh.vn"
