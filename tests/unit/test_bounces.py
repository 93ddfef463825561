"""Reading delivery reports (pure): every case in tests/data/bounces/, VERP tokens, and the
Message-ID of digests read back."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from feedsvc import config as config_module
from feedsvc.errors import ConfigError
from feedsvc.model import ReportKind
from feedsvc.newsletter.bounces import parse_report
from feedsvc.newsletter.compose import message_id
from feedsvc.newsletter.reports import Match, effect_of
from feedsvc.newsletter.verp import (
    DigestKey,
    ReturnPath,
    digest_key,
    token_delivery,
    verp_address,
    verp_delivery,
)
from feedsvc.store.bounces import Effect

REPORTS = Path(__file__).parents[1] / "data" / "bounces"
CASES = sorted(path.stem for path in REPORTS.glob("*.eml"))
RETURN_PATH = ReturnPath("bounces", "example.vn", b"test-secret-key-0123456789")


@pytest.mark.parametrize("name", CASES)
def test_each_report_reads_as_expected(name: str) -> None:
    report = parse_report((REPORTS / f"{name}.eml").read_bytes())
    expected = json.loads((REPORTS / f"{name}.expected.json").read_text(encoding="utf-8"))
    got = {
        "kind": report.kind.value,
        "recipients": list(report.recipients),
        "original_message_id": report.original_message_id,
        "verp_token": report.verp_token,
        "message_id": report.message_id,
    }
    assert got == expected


def test_the_data_names_the_deliveries_its_readme_says() -> None:
    """The tokens in the files are genuine for the tests' key: deliveries 1–8."""
    named = {}
    for name in CASES:
        token = parse_report((REPORTS / f"{name}.eml").read_bytes()).verp_token
        if token is not None:
            named[name] = token_delivery(RETURN_PATH, token)
    assert named == {
        "gmail-nosuchuser": 1,
        "postfix-user-unknown": 5,
        "rfc3464-delayed": 3,
        "yahoo-arf-abuse": 7,
        "outlook-jmrp-redacted": 6,
        "qmail-failure": 4,
        "vacation-autoreply": 8,
        "forged-token": None,
    }


def test_a_report_read_twice_has_one_key_and_bytes_decide_without_message_id() -> None:
    data = (REPORTS / "gmail-nosuchuser.eml").read_bytes()
    assert parse_report(data).key == parse_report(b"X-Copy: 1\n" + data).key
    bare = b"Subject: failure notice\n\nno message id here\n"
    assert parse_report(bare).key.startswith("b:")
    assert parse_report(bare).key != parse_report(bare + b"!").key


def test_garbage_is_other_never_an_error() -> None:
    for data in (
        b"",
        b"\x00\xff" * 1000,
        b"Content-Type: multipart/report\n\n--",
        b"a" * 6_000_000,
    ):
        assert parse_report(data).kind is ReportKind.OTHER


def test_verp_addresses_round_trip_and_resist_forgery() -> None:
    address = verp_address(RETURN_PATH, 42)
    assert address.startswith("bounces+42-")
    assert address.endswith("@example.vn")
    assert len(address.partition("@")[0]) <= 64  # RFC 5321's limit for a local part
    assert verp_delivery(RETURN_PATH, address) == 42
    assert verp_delivery(RETURN_PATH, address.upper()) == 42  # a server folded the case
    forged = address.replace("bounces+42-", "bounces+43-")
    assert verp_delivery(RETURN_PATH, forged) is None
    other_key = ReturnPath("bounces", "example.vn", b"another-secret-key-0123")
    assert verp_delivery(other_key, address) is None
    for junk in ("bounces@example.vn", "bounces+@example.vn", "bounces+x-y@example.vn", "a+1-2@b"):
        assert verp_delivery(RETURN_PATH, junk) is None


def test_digest_message_ids_read_back() -> None:
    for period in (
        datetime(2026, 11, 28, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 28, 3, 4, 5, tzinfo=UTC),
    ):
        mid = message_id("weekly", period, 7, "example.vn")
        assert digest_key(mid, "example.vn") == DigestKey("weekly", period, 7)
        assert digest_key(mid, "other.example") is None
    assert digest_key("<8b1f0c3e@example.vn>", "example.vn") is None
    assert digest_key("<digest.daily.notadate.7@example.vn>", "example.vn") is None


def test_what_each_report_does() -> None:
    matched, unmatched = Match(delivery=object()), Match(None)  # type: ignore[arg-type]
    assert effect_of(ReportKind.PERMANENT, matched) is Effect.BOUNCE
    assert effect_of(ReportKind.COMPLAINT, matched) is Effect.UNSUBSCRIBE
    assert effect_of(ReportKind.TRANSIENT, matched) is Effect.RECORD
    assert effect_of(ReportKind.PERMANENT, unmatched) is Effect.KEEP
    assert effect_of(ReportKind.OTHER, matched) is Effect.IGNORE


BASE = 'site: {title: T, base_url: "http://127.0.0.1:8080"}\nmail:\n  bounces:\n    mailbox: "%s"\n'


@pytest.mark.parametrize(
    ("mailbox", "message"),
    [
        ("imap://mail.example.vn/INBOX", "name the user"),
        ("imap://bounces@mail.example.vn", "name the user"),
        ("imap://bounces:secret@mail.example.vn/INBOX", "password_env"),
        ("pop3://bounces@mail.example.vn/INBOX", "use imap://"),
    ],
)
def test_a_wrong_mailbox_is_one_line_with_its_line(
    tmp_path: Path, mailbox: str, message: str
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(BASE % mailbox, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        config_module.load(path)
    [problem] = caught.value.problems
    assert problem.startswith(f"{path}:4: mail.bounces.mailbox: ")
    assert message in problem
    assert "secret" not in problem


def test_bounce_settings_have_their_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(BASE % "var/bounces", encoding="utf-8")
    config = config_module.load(path)
    assert config.mail.bounce_limit == 3
    assert config.mail.bounces is not None
    assert config.mail.bounces.every.total_seconds() == 300
    assert ReturnPath.from_config(config, b"k" * 16).local == "bounces"
