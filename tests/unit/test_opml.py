"""OPML in and out, and adding imported sources to config.yaml without losing comments."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedsvc import config, config_edit, opml
from tests.conftest import NOW

OPML = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>Feedly</title></head><body>
  <outline text="X\xc3\xa3 h\xe1\xbb\x99i" title="X\xc3\xa3 h\xe1\xbb\x99i">
    <outline type="rss" text="B\xc3\xa1o H\xc3\xa0 T\xc4\xa9nh" xmlUrl="https://baohatinh.vn/rss/xa-hoi.rss"/>
  </outline>
  <outline type="rss" text="Tu\xe1\xbb\x95i Tr\xe1\xba\xbb" xmlUrl="https://tuoitre.vn/rss/thoi-su.rss"/>
</body></opml>"""

CONFIG = """\
# our newsroom
site:
  title: "Bản tin"
  base_url: "http://127.0.0.1:8080"

sources:
  - id: existing   # keep this comment
    url: "https://tuoitre.vn/rss/thoi-su.rss"

categories:
  - id: xa-hoi
    title: "Xã hội"
"""


def test_read_keeps_folders_and_vietnamese_titles() -> None:
    assert opml.read(OPML) == [
        opml.Outline("https://baohatinh.vn/rss/xa-hoi.rss", "Báo Hà Tĩnh", "Xã hội"),
        opml.Outline("https://tuoitre.vn/rss/thoi-su.rss", "Tuổi Trẻ", ""),
    ]


def test_write_then_read_round_trips() -> None:
    outlines = [opml.Outline("https://x.vn/a.rss", "Đà Nẵng", "Thời sự")]
    assert opml.read(opml.write("Bản tin", outlines, NOW)) == outlines


def test_not_opml_is_a_clear_error() -> None:
    with pytest.raises(opml.OpmlError, match="not OPML"):
        opml.read(b"<html><body/></html>")


def test_import_appends_new_sources_and_keeps_comments(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    loaded = config.load(path)
    new = config_edit.sources_from_outlines(loaded, opml.read(OPML), []).sources
    assert [(s.id, s.categories) for s in new] == [("bao-ha-tinh", ["xa-hoi"])]  # folder = category
    text = config_edit.add_sources(CONFIG, new)
    assert "# keep this comment" in text
    assert "# our newsroom" in text
    reloaded = config.parse(text, path)
    assert [s.id for s in reloaded.sources] == ["existing", "bao-ha-tinh"]
    assert reloaded.sources[1].title == "Báo Hà Tĩnh"


def test_import_into_a_config_without_sources(tmp_path: Path) -> None:
    text = CONFIG.split("sources:")[0] + "categories:\n  - id: xa-hoi\n    title: X\n"
    loaded = config.parse(text, tmp_path / "config.yaml")
    new = config_edit.sources_from_outlines(loaded, opml.read(OPML), ["xa-hoi"]).sources
    result = config.parse(config_edit.add_sources(text, new), tmp_path / "config.yaml")
    assert [s.id for s in result.sources] == ["bao-ha-tinh", "tuoi-tre"]
    assert all(s.categories == ["xa-hoi"] for s in result.sources)


def test_slugify_folds_vietnamese() -> None:
    assert config_edit.slugify("Báo Hà Tĩnh — Đời sống") == "bao-ha-tinh-doi-song"


MIXED = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>Feedly</title></head><body>
  <outline type="rss" text="Good" xmlUrl="https://x.vn/good.rss"/>
  <outline type="rss" text="Gopher" xmlUrl="gopher://x.vn/feed"/>
  <outline text="Folder">
    <outline type="rss" text="Local file"
             xmlUrl="file:///etc/passwd"/>
    <outline type="rss" text="No host" xmlUrl="http://"/>
  </outline>
  <outline type="rss" text="Also good" xmlUrl="http://y.vn/feed.xml"/>
</body></opml>"""


def test_read_gives_each_outline_its_line() -> None:
    assert [(o.title, o.line) for o in opml.read(MIXED)] == [
        ("Good", 3),
        ("Gopher", 4),
        ("Local file", 6),
        ("No host", 8),
        ("Also good", 10),
    ]


def test_import_skips_outlines_that_are_not_http_and_reports_each_line(tmp_path: Path) -> None:
    loaded = config.parse(CONFIG, tmp_path / "config.yaml")
    found = config_edit.sources_from_outlines(loaded, opml.read(MIXED), [])
    assert [s.url for s in found.sources] == ["https://x.vn/good.rss", "http://y.vn/feed.xml"]
    assert found.skipped == [
        config_edit.Skipped(4, "'gopher://x.vn/feed' is not an http(s) URL"),
        config_edit.Skipped(6, "'file:///etc/passwd' is not an http(s) URL"),
        config_edit.Skipped(8, "'http://' is not an http(s) URL"),
    ]


def test_an_entity_bomb_is_refused() -> None:
    levels = "".join(f'<!ENTITY e{n} "{f"&e{n - 1};" * 10}">' for n in range(1, 10))
    bomb = (
        f'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY e0 "aaaaaaaaaa">{levels}]>'
        '<opml><body><outline xmlUrl="https://x.vn/&e9;"/></body></opml>'
    ).encode()
    with pytest.raises(opml.OpmlError, match="not valid OPML"):
        opml.read(bomb)
