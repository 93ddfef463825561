"""Topics on the command line: ``subscribers add --topic``, ``list`` (and ``--json``), and
the CSV ``topics`` column from ``export`` back through ``import``, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.integration.test_consent_cli import Operator


@pytest.fixture
def operator(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Operator:
    monkeypatch.delenv("FEEDSVC_SECRET_KEY", raising=False)
    return Operator(tmp_path / "site", db_url)


def test_add_with_topics_then_list_and_json(operator: Operator) -> None:
    result = operator.run(
        "add",
        "theo.doi@example.vn",
        "--confirmed",
        "--topic",
        "đà nẵng",
        "--topic",
        "Bão số 3",
        "--topic",
        "DA NANG",  # fmt: skip
    )
    assert result.exit_code == 0, result.output
    assert operator.subscriber("theo.doi@example.vn").topics == ("đà nẵng", "Bão số 3")
    listed = operator.run("list")
    assert "đà nẵng;" in listed.stdout  # the table may wrap the cell
    assert "Bão số 3" in listed.stdout
    [row] = json.loads(operator.run("list", "--json").stdout)
    assert row["topics"] == ["đà nẵng", "Bão số 3"]


@pytest.mark.parametrize(
    ("topics", "message"),
    [
        ([f"chủ đề {n}" for n in range(11)], "Follow at most 10 topics."),
        (["ư" * 61], "at most 60 characters"),
        (["!!!"], "letter or digit"),
    ],
)
def test_a_bad_topic_is_one_line_and_adds_nobody(
    operator: Operator, topics: list[str], message: str
) -> None:
    args = [arg for topic in topics for arg in ("--topic", topic)]
    result = operator.run("add", "sai@example.vn", "--confirmed", *args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert json.loads(operator.run("list", "--json").stdout) == []


def test_topics_survive_export_then_import(operator: Operator, tmp_path: Path, db_url: str) -> None:
    operator.run("add", "mot@example.vn", "--confirmed", "--topic", "đà nẵng", "--topic", "lũ")
    operator.run("add", "hai@example.vn", "--confirmed")
    exported = operator.run("export").stdout
    rows = {row["email"]: row["topics"] for row in csv.DictReader(io.StringIO(exported))}
    assert rows == {"mot@example.vn": "đà nẵng; lũ", "hai@example.vn": ""}
    path = tmp_path / "readers.csv"
    path.write_text(exported, encoding="utf-8")
    if db_url.startswith("sqlite"):
        target = Operator(tmp_path / "target", db_url.replace("feedsvc.db", "new.db"))
    else:  # one PostgreSQL schema: empty it instead
        for email in rows:
            operator.run("remove", email)
        target = Operator(tmp_path / "target", db_url)
    result = target.run("import", str(path))
    assert result.exit_code == 0, result.output
    assert target.subscriber("mot@example.vn").topics == ("đà nẵng", "lũ")
    assert target.subscriber("hai@example.vn").topics == ()


def test_a_csv_without_the_topics_column_still_imports(operator: Operator, tmp_path: Path) -> None:
    path = tmp_path / "old.csv"
    path.write_text("email,categories,schedule,locale\nmoi@example.vn,xa-hoi,daily,vi\n", "utf-8")
    result = operator.run("import", str(path), "--confirmed")
    assert result.exit_code == 0, result.output
    assert operator.subscriber("moi@example.vn").topics == ()
