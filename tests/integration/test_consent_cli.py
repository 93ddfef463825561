"""Consent through the ``feedsvc subscribers`` commands: the same rules as the web form.

The commands run in-process (click's runner) against real SQLite and PostgreSQL
databases; the outbox is the mailbox.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from feedsvc import config as config_module
from feedsvc.cli import main
from feedsvc.config import Config
from feedsvc.model import Subscriber, SubscriberStatus
from feedsvc.newsletter.mail import OutboxMailer
from feedsvc.newsletter.tokens import Purpose, Tokens
from feedsvc.store import Store

CONFIG = """\
site:
  title: "Báo Hà Tĩnh — Bản tin"
  base_url: "https://bantin.example.vn"
storage:
  url: "{url}"
categories:
  - id: xa-hoi
    title: "Xã hội"
  - id: tre-em
    title: "Trẻ em"
newsletter:
  from: "Bản tin Hà Tĩnh <bantin@baohatinh.example>"
  schedules:
    daily: "0 7 * * *"
"""
# DESIGN.md's seven columns, then the topics (issue 12), "; "-separated.
EXPORT_HEADER = "email,categories,schedule,locale,status,created_at,confirmed_at,topics"
LAST_YEAR = datetime(2025, 3, 1, 8, 30, tzinfo=UTC)


class Operator:
    """Runs ``feedsvc subscribers …`` against one config file, and reads the outcome."""

    def __init__(self, folder: Path, url: str) -> None:
        folder.mkdir(exist_ok=True)
        self.path = folder / "config.yaml"
        self.path.write_text(CONFIG.format(url=url), encoding="utf-8")
        self.config: Config = config_module.load(self.path)

    def run(self, *args: str, input: str | None = None) -> Result:
        command, *rest = args  # options first: an address may begin with "-"
        arguments = ["subscribers", command, "--config", str(self.path), *rest]
        return CliRunner().invoke(main, arguments, input=input)

    def mail(self) -> list[EmailMessage]:
        outbox = OutboxMailer(self.config.outbox_path)
        return outbox.messages() if outbox.directory.exists() else []

    def subscriber(self, email: str) -> Subscriber:
        store = Store.open(self.config.database_url)
        try:
            found = store.subscribers.by_email(email)
        finally:
            store.close()
        assert found is not None, email
        return found

    def set(self, email: str, **values: object) -> None:
        store = Store.open(self.config.database_url)
        try:
            store.subscribers.update(self.subscriber(email).id, **values)
        finally:
            store.close()


@pytest.fixture
def operator(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Operator:
    monkeypatch.delenv("FEEDSVC_SECRET_KEY", raising=False)
    return Operator(tmp_path / "site", db_url)


def confirm_key(operator: Operator, message: EmailMessage) -> str | None:
    body = message.get_body(preferencelist=("plain",))
    assert isinstance(body, EmailMessage)
    [token] = {
        word.split("/confirm/")[1] for word in body.get_content().split() if "/confirm/" in word
    }
    return Tokens.from_config(operator.config).read(Purpose.CONFIRM, token).key


def test_add_without_confirmed_sends_the_confirmation_email(operator: Operator) -> None:
    result = operator.run("add", "ban.moi@example.vn", "--category", "xa-hoi")
    assert result.exit_code == 0, result.output
    assert "pending" in result.stdout
    assert "confirmation sent" in result.stdout
    [message] = operator.mail()
    assert message["To"] == "ban.moi@example.vn"
    assert confirm_key(operator, message) == operator.subscriber("ban.moi@example.vn").key


def test_add_confirmed_sends_nothing(operator: Operator) -> None:
    result = operator.run("add", "da.dong.y@example.vn", "--confirmed")
    assert result.exit_code == 0, result.output
    assert operator.subscriber("da.dong.y@example.vn").status is SubscriberStatus.ACTIVE
    assert operator.mail() == []


def test_add_never_brings_back_who_left(operator: Operator) -> None:
    """The rule is consent's (newsletter.consent.add), the same with or without --confirmed."""
    operator.run("add", "da.roi.di@example.vn", "--confirmed")
    assert operator.run("unsubscribe", "da.roi.di@example.vn").exit_code == 0
    for again in (("--confirmed",), ()):
        result = operator.run("add", "da.roi.di@example.vn", *again)
        assert result.exit_code == 1
        assert "already a subscriber (unsubscribed)" in result.stderr
        assert "Traceback" not in result.output
    assert operator.subscriber("da.roi.di@example.vn").status is SubscriberStatus.UNSUBSCRIBED
    assert operator.mail() == []


def test_confirm_makes_pending_readers_active(operator: Operator) -> None:
    operator.run("add", "mot@example.vn")
    operator.run("add", "hai@example.vn")
    result = operator.run("confirm", "mot@example.vn", "HAI@example.vn", "khong.co@example.vn")
    assert result.exit_code == 1  # one address is unknown; the others are done anyway
    assert "khong.co@example.vn" in result.stderr
    for email in ("mot@example.vn", "hai@example.vn"):
        reader = operator.subscriber(email)
        assert reader.status is SubscriberStatus.ACTIVE
        assert reader.confirmed_at is not None


def test_confirm_never_brings_back_who_left(operator: Operator) -> None:
    operator.run("add", "da.di@example.vn", "--confirmed")
    assert operator.run("unsubscribe", "da.di@example.vn").exit_code == 0
    result = operator.run("confirm", "da.di@example.vn")
    assert result.exit_code == 1
    assert "unsubscribed" in result.stderr
    assert operator.subscriber("da.di@example.vn").status is SubscriberStatus.UNSUBSCRIBED


def test_resend_is_limited_as_the_form_is(
    operator: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator.run("add", "gui.lai@example.vn")
    soon = operator.run("resend", "gui.lai@example.vn")  # a second later
    assert soon.exit_code == 0, soon.output
    assert "too soon" in soon.stdout
    assert len(operator.mail()) == 1
    from feedsvc.newsletter import confirmations

    monkeypatch.setattr(confirmations, "SPACING", confirmations.SPACING * 0)  # a minute later
    later = operator.run("resend", "gui.lai@example.vn")
    assert "confirmation sent" in later.stdout
    first, second = operator.mail()
    assert confirm_key(operator, first) == confirm_key(operator, second)  # the same sign-up
    for _ in range(2):  # five asked for in an hour, the one too soon included
        operator.run("resend", "gui.lai@example.vn")
    limited = operator.run("resend", "gui.lai@example.vn")
    assert limited.exit_code == 1
    assert "too many" in limited.stderr
    assert len(operator.mail()) == 4


def test_resend_to_an_active_reader_sends_nothing(operator: Operator) -> None:
    operator.run("add", "dang.nhan@example.vn", "--confirmed")
    result = operator.run("resend", "dang.nhan@example.vn")
    assert "already active" in result.stdout
    assert operator.mail() == []


def test_unsubscribe_command(operator: Operator) -> None:
    operator.run("add", "thoi@example.vn", "--confirmed")
    result = operator.run("unsubscribe", "thoi@example.vn", "ai.do@example.vn")
    assert result.exit_code == 1
    assert "ai.do@example.vn" in result.stderr
    assert operator.subscriber("thoi@example.vn").status is SubscriberStatus.UNSUBSCRIBED


def test_list_json_has_the_documented_fields(operator: Operator) -> None:
    operator.run("add", "an@example.vn", "--confirmed", "--category", "tre-em")
    [row] = json.loads(operator.run("list", "--json").stdout)
    assert set(row) >= {
        "email",
        "status",
        "categories",
        "schedule",
        "locale",
        "created_at",
        "confirmed_at",
        "bounce_count",
    }
    assert (row["email"], row["status"], row["categories"]) == (
        "an@example.vn",
        "active",
        ["tre-em"],
    )


def test_import_without_confirmed_sends_confirmations(operator: Operator, tmp_path: Path) -> None:
    csv_file = tmp_path / "readers.csv"
    csv_file.write_text("email,categories\nmot@example.vn,xa-hoi\nhai@example.vn,tre-em\n", "utf-8")
    result = operator.run("import", str(csv_file))
    assert result.exit_code == 0, result.output
    assert sorted(m["To"] for m in operator.mail()) == ["hai@example.vn", "mot@example.vn"]
    assert operator.subscriber("mot@example.vn").status is SubscriberStatus.PENDING


def exported_rows(operator: Operator) -> list[dict[str, str]]:
    text = operator.run("export").stdout
    assert text.splitlines()[0] == EXPORT_HEADER
    return list(csv.DictReader(io.StringIO(text)))


def seed_everyone(operator: Operator) -> None:
    """Four readers, one in each state, with consent dates from last year."""
    for email, status in [
        ("dang.nhan@example.vn", SubscriberStatus.ACTIVE),
        ("cho@example.vn", SubscriberStatus.PENDING),
        ("da.di@example.vn", SubscriberStatus.UNSUBSCRIBED),
        ("bi.tra.lai@example.vn", SubscriberStatus.BOUNCED),
    ]:
        operator.run("add", email, "--confirmed")
        confirmed = None if status is SubscriberStatus.PENDING else LAST_YEAR
        operator.set(email, status=status, created_at=LAST_YEAR, confirmed_at=confirmed)


@pytest.mark.parametrize("confirmed", [True, False])
def test_a_migration_never_brings_back_who_left(
    operator: Operator, tmp_path: Path, db_url: str, confirmed: bool
) -> None:
    """Export, then import into a new database, with or without --confirmed."""
    seed_everyone(operator)
    rows = exported_rows(operator)
    assert {row["email"]: row["status"] for row in rows} == {
        "dang.nhan@example.vn": "active",
        "cho@example.vn": "pending",
        "da.di@example.vn": "unsubscribed",
        "bi.tra.lai@example.vn": "bounced",
    }
    assert rows[0]["created_at"] == LAST_YEAR.isoformat()
    exported = tmp_path / "readers.csv"
    exported.write_text(operator.run("export").stdout, encoding="utf-8")

    if db_url.startswith("sqlite"):
        target = Operator(tmp_path / "target", db_url.replace("feedsvc.db", "new.db"))
    else:  # a PostgreSQL test has one schema: empty it instead
        for row in rows:
            operator.run("remove", row["email"])
        target = Operator(tmp_path / "target", db_url)
    args = ["import", str(exported)] + (["--confirmed"] if confirmed else [])
    result = target.run(*args)
    assert result.exit_code == 0, result.output
    assert "kept 2 unsubscribed or bounced" in result.stdout
    states = {row["email"]: target.subscriber(row["email"]).status.value for row in rows}
    assert states == {
        "dang.nhan@example.vn": "active",
        "cho@example.vn": "active" if confirmed else "pending",
        "da.di@example.vn": "unsubscribed",
        "bi.tra.lai@example.vn": "bounced",
    }
    kept = target.subscriber("dang.nhan@example.vn")
    assert (kept.created_at, kept.confirmed_at) == (LAST_YEAR, LAST_YEAR)
    assert target.subscriber("da.di@example.vn").created_at == LAST_YEAR
    mailed = [m["To"] for m in target.mail()]
    assert mailed == ([] if confirmed else ["cho@example.vn"])


def test_import_never_reactivates_an_address_already_here(
    operator: Operator, tmp_path: Path
) -> None:
    seed_everyone(operator)
    old_style = tmp_path / "old.csv"
    old_style.write_text(
        "email,categories,schedule,locale\n"
        "da.di@example.vn,xa-hoi,daily,vi\n"
        "bi.tra.lai@example.vn,xa-hoi,daily,vi\n"
        "moi@example.vn,xa-hoi,daily,vi\n",
        encoding="utf-8",
    )
    for args in (["import", str(old_style), "--confirmed"], ["import", str(old_style)]):
        result = operator.run(*args)
        assert result.exit_code == 0, result.output
        assert "kept 2 unsubscribed or bounced" in result.stdout
    assert operator.subscriber("da.di@example.vn").status is SubscriberStatus.UNSUBSCRIBED
    assert operator.subscriber("bi.tra.lai@example.vn").status is SubscriberStatus.BOUNCED
    assert operator.subscriber("moi@example.vn").status is SubscriberStatus.ACTIVE
    assert operator.mail() == []


def test_export_neutralises_formulas_and_import_undoes_it(
    operator: Operator, tmp_path: Path
) -> None:
    for email in ("=1+2@example.vn", "-2+3@example.vn", "+84@example.vn", "'=x@example.vn"):
        assert operator.run("add", "--confirmed", "--", email).exit_code == 0, email
    text = operator.run("export").stdout
    cells = [row[0] for row in csv.reader(io.StringIO(text))][1:]
    assert all(cell[0] not in "=+-@\t\r" for cell in cells), cells
    exported = tmp_path / "readers.csv"
    exported.write_text(text, encoding="utf-8")
    for email in ("=1+2@example.vn", "-2+3@example.vn", "+84@example.vn", "'=x@example.vn"):
        operator.run("remove", "--", email)
    assert operator.run("import", str(exported)).exit_code == 0
    again = json.loads(operator.run("list", "--json").stdout)
    assert sorted(row["email"] for row in again) == sorted(
        ["=1+2@example.vn", "-2+3@example.vn", "+84@example.vn", "'=x@example.vn"]
    )


def test_add_warns_about_an_address_that_needs_smtputf8(operator: Operator) -> None:
    result = operator.run("add", "nguyễn@example.vn", "--confirmed")
    assert result.exit_code == 0, result.output
    assert "SMTPUTF8" in result.stderr
    idn = operator.run("add", "nguyen@bücher.example", "--confirmed")
    assert "SMTPUTF8" not in idn.stderr  # the domain travels as its A-label
