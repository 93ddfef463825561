"""``feedsvc search``: the same search as the page, as JSON or a table, remote text inert."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from feedsvc import config as config_module
from feedsvc.cli import main
from feedsvc.model import ParsedEntry, ParsedFeed
from feedsvc.store import Store
from tests.conftest import NOW
from tests.integration.corpus_site import CONFIG, load_corpus


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(port=8080, db=tmp_path / "feedsvc.db"), encoding="utf-8")
    config = config_module.load(path)
    store = Store.open(config.database_url)
    load_corpus(config, store)
    [source] = [s for s in store.sources.list() if s.id == "xa-hoi"]
    hostile = ParsedEntry(
        identity="hostile",
        title="Trẻ em \x1b]0;pwned\x07[bold red]giả[/bold red] \u202egpj",
        link="https://baohatinh.example.vn/hostile.html",
        published=NOW + timedelta(hours=1),
        content_hash="hostile",
    )
    store.entries.apply(source, ParsedFeed("Báo", None, (hostile,)), {}, NOW + timedelta(hours=1))
    store.close()
    return path


def search(config_path: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["search", *args, "--config", str(config_path)])


def test_json_has_the_fields_and_finds_toned_text(config_path: Path) -> None:
    result = search(config_path, "tre em", "--json", "--limit", "5")
    assert result.exit_code == 0, result.output
    hits = json.loads(result.output)
    assert 0 < len(hits) <= 5
    for hit in hits:
        assert {"title", "url", "source", "published_at", "snippet"} <= set(hit)
    assert any("trẻ em" in (h["title"] + h["snippet"]).casefold() for h in hits)


def test_a_category_narrows_and_an_unknown_one_is_a_one_line_error(config_path: Path) -> None:
    inside = json.loads(search(config_path, "tinh", "--category", "xa-hoi", "--json").output)
    everywhere = json.loads(search(config_path, "tinh", "--json", "--limit", "200").output)
    assert {h["url"] for h in inside} <= {h["url"] for h in everywhere}
    result = search(config_path, "tinh", "--category", "khong-co")
    assert result.exit_code == 1
    assert "unknown category 'khong-co'" in result.output
    assert "Traceback" not in result.output


def test_the_table_shows_remote_text_without_obeying_it(config_path: Path) -> None:
    result = search(config_path, "tre em")
    assert result.exit_code == 0, result.output
    assert "\x1b]0;" not in result.output
    assert "\u202e" not in result.output
    # shown, not read as markup (the cell may wrap at the space)
    assert "[bold" in result.output
    assert "red]giả[/bold" in result.output


@pytest.mark.parametrize("typed", ['"', "*", "NEAR(", "x" * 10_240])
def test_a_hostile_query_finds_nothing_and_says_so(config_path: Path, typed: str) -> None:
    result = search(config_path, typed)
    assert result.exit_code == 0
    assert result.output.strip() == "nothing found"
    assert json.loads(search(config_path, typed, "--json").output) == []
