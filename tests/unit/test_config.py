"""config.yaml: every mistake is reported with its file and line, all at once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from feedsvc import config
from feedsvc.errors import ConfigError

ROOT = Path(__file__).parents[2]
GOOD = """\
site:
  title: "Báo Hà Tĩnh — Bản tin"
  base_url: "http://127.0.0.1:8080"
fetch:
  interval: 15m
  max_bytes: 512KB
sources:
  - id: xa-hoi
    url: "https://baohatinh.vn/rss/xa-hoi.xml"
    categories: [xa-hoi]
    interval: 90s
categories:
  - id: xa-hoi
    title: "Xã hội"
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        config.load(path)
    return [p.removeprefix(f"{path}:") for p in info.value.problems]


def test_bundled_config_is_valid() -> None:
    loaded = config.load(ROOT / "config.yaml")
    assert loaded.sources
    assert loaded.categories
    assert loaded.database_url == f"sqlite:///{ROOT / 'var' / 'feedsvc.db'}"


def test_durations_and_sizes_are_text(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(GOOD, encoding="utf-8")
    loaded = config.load(path)
    assert loaded.fetch.interval == timedelta(minutes=15)
    assert loaded.fetch.max_bytes == 512_000
    assert loaded.source_interval(loaded.sources[0]) == timedelta(seconds=90)
    assert loaded.site.timezone == "Asia/Ho_Chi_Minh"


def test_relative_sqlite_path_is_anchored_at_the_config_folder(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(GOOD, encoding="utf-8")
    assert config.load(path).database_url == f"sqlite:///{tmp_path / 'var' / 'feedsvc.db'}"


def test_unknown_category_reported_on_its_line_with_suggestion(tmp_path: Path) -> None:
    text = GOOD.replace("categories: [xa-hoi]", "categories: [xa-hio]")
    assert problems(tmp_path, text) == [
        "10: source 'xa-hoi' refers to unknown category 'xa-hio' (did you mean 'xa-hoi'?)"
    ]


def test_bad_duration_names_line_and_format(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, GOOD.replace("interval: 90s", "interval: 90 seconds"))
    assert problem.startswith("11: sources[0].interval: invalid duration '90 seconds'")


def test_unknown_key_suggests_the_close_one(tmp_path: Path) -> None:
    text = GOOD.replace("  max_bytes: 512KB", "  max_byte: 512KB")
    assert problems(tmp_path, text) == [
        "6: unknown key 'fetch.max_byte' (did you mean 'max_bytes'?)"
    ]


def test_missing_required_key(tmp_path: Path) -> None:
    text = GOOD.replace('  base_url: "http://127.0.0.1:8080"\n', "")
    assert problems(tmp_path, text) == ["1: missing required key 'site.base_url'"]


def test_duplicate_id_and_bad_cron_and_default_schedule_all_reported(tmp_path: Path) -> None:
    text = (
        GOOD
        + "  - id: xa-hoi\n    title: Again\n"
        + "newsletter:\n  schedules:\n    morning: '0 25 * * *'\n  default_schedule: daily\n"
    )
    found = problems(tmp_path, text)
    assert found[0] == "15: duplicate category id 'xa-hoi'"
    assert found[1].startswith("19: newsletter.schedules.morning: invalid cron expression '0 25")
    assert found[2] == "20: default_schedule 'daily' is not one of newsletter.schedules"


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, GOOD.replace('  title: "Xã hội"', "  title: [Xã hội"))
    assert problem.startswith("15: YAML syntax error")


def test_duplicate_yaml_key_is_not_silently_overwritten(tmp_path: Path) -> None:
    assert problems(tmp_path, GOOD + "fetch:\n  interval: 1m\n") == ["15: duplicate key 'fetch'"]


def test_bad_timezone_and_url(tmp_path: Path) -> None:
    text = GOOD.replace(
        'base_url: "http://127.0.0.1:8080"', "base_url: ftp://x\n  timezone: Mars/Olympus"
    )
    assert problems(tmp_path, text) == [
        "3: site.base_url: 'ftp://x' is not an http(s) URL",
        "4: site.timezone: unknown time zone 'Mars/Olympus' (e.g. Asia/Ho_Chi_Minh)",
    ]


def test_unreadable_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        config.load(tmp_path / "missing.yaml")
    [problem] = info.value.problems
    assert "missing.yaml: cannot read" in problem


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('"Bản tin <bantin@@example.vn>"', "is not an email address"),
        ('"Bản tin <bantin@example.vn"', "is not an email address"),
        ('"bantin at example.vn"', "is not an email address"),
        ('"bantin@bücher.example"', "xn--bcher-kva.example"),
        ('"nguyễn@example.vn"', "must be ASCII"),
        ('"Bản tin\\r\\nBcc: x@evil.example <bantin@example.vn>"', "control character"),
    ],
)
def test_invalid_from_is_reported_on_its_line(tmp_path: Path, value: str, reason: str) -> None:
    [problem] = problems(tmp_path, GOOD + f"newsletter:\n  from: {value}\n")
    assert problem.startswith("16: newsletter.from: "), problem
    assert reason in problem


def test_invalid_reply_to_is_reported_on_its_line(tmp_path: Path) -> None:
    text = GOOD + 'newsletter:\n  from: "Bản tin <bantin@example.vn>"\n  reply_to: "toà soạn"\n'
    [problem] = problems(tmp_path, text)
    assert problem.startswith("17: newsletter.reply_to: 'toà soạn' is not an email address")


def test_from_and_reply_to_accept_names_and_bare_addresses(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        GOOD
        + 'newsletter:\n  from: "\\"Bản tin, Hà Tĩnh\\" <ban.tin+hn@mail.example.vn>"\n'
        + "  reply_to: toasoan@example.vn\n",
        encoding="utf-8",
    )
    loaded = config.load(path)
    assert loaded.newsletter.from_ == '"Bản tin, Hà Tĩnh" <ban.tin+hn@mail.example.vn>'
    assert loaded.newsletter.reply_to == "toasoan@example.vn"
    assert config.Config(site=loaded.site).newsletter.from_ == "feedsvc <feedsvc@localhost>"


def test_where_names_the_line_of_a_key_or_its_section(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(GOOD, encoding="utf-8")
    loaded = config.load(path)
    assert loaded.where("fetch", "max_bytes") == f"{path}:6"
    assert loaded.where("fetch", "timeout") == f"{path}:4"  # absent: its section
    assert loaded.where("mail", "smtp", "password_env") == f"{path}:1"  # no section either
    assert loaded.declares("sources")
    assert not loaded.declares("newsletter")


def test_a_schedule_is_a_cron_string_or_a_mapping_with_a_title(tmp_path: Path) -> None:
    text = GOOD + (
        "newsletter:\n  schedules:\n    daily: '0 7 * * *'\n    weekly:\n"
        "      cron: '0 7 * * mon'\n"
        "      title: {vi: 'Hằng tuần, sáng thứ Hai', en: 'Weekly, Monday morning'}\n"
        "      intro: 'Những tin đáng đọc nhất tuần qua.'\n"
    )
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    newsletter = config.load(path).newsletter
    assert newsletter.cron("daily") == "0 7 * * *"
    weekly = newsletter.schedules["weekly"]
    assert weekly.cron == "0 7 * * mon"
    assert weekly.title is not None
    assert (weekly.title.get("vi"), weekly.title.get("en")) == (
        "Hằng tuần, sáng thứ Hai",
        "Weekly, Monday morning",
    )
    assert weekly.intro is not None
    assert weekly.intro.get("en") == "Những tin đáng đọc nhất tuần qua."  # one text for both


def test_a_bad_cron_in_the_mapping_form_points_at_its_line(tmp_path: Path) -> None:
    text = GOOD + "newsletter:\n  schedules:\n    daily:\n      cron: '0 7 * *'\n      titel: x\n"
    found = problems(tmp_path, text)
    assert found[0].startswith("18: newsletter.schedules.daily.cron: invalid cron expression")
    assert found[1] == "19: unknown key 'newsletter.schedules.daily.titel' (did you mean 'title'?)"
