"""Subscriber CSV: every bad row reported by line, the good ones kept."""

from __future__ import annotations

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
    signups, problems = roster.read_csv(config, text)
    assert [(s.email, s.categories, s.schedule, s.locale) for s in signups] == [
        ("An.Nguyen@baohatinh.vn", ("xa-hoi", "tre-em"), "weekly", "en"),
        ("chi@example.vn", ("tre-em",), "daily", "vi"),  # defaults filled in
    ]
    assert [p.split(":")[0] for p in problems] == ["line 3", "line 4", "line 7"]
    assert "unknown categories: the-thao" in problems[1]


def test_export_then_import_round_trips(config: Config) -> None:
    signups, _ = roster.read_csv(config, "trang@example.vn,tre-em xa-hoi,weekly,en\n")
    subscriber = Subscriber(
        id=1,
        email=signups[0].email,
        status=SubscriberStatus.ACTIVE,
        categories=signups[0].categories,
        schedule="weekly",
        locale="en",
        timezone="Asia/Ho_Chi_Minh",
        created_at=NOW,
    )
    again, problems = roster.read_csv(config, roster.write_csv([subscriber]))
    assert (again, problems) == (signups, [])


def test_unicode_domain_is_accepted_and_normalized() -> None:
    assert roster.normalize_email(" an@BẢOHÀTĨNH.vn ") == "an@bảohàtĩnh.vn"
