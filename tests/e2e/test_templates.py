"""A newsroom's own templates and names: overrides file by file, `check` pointing at the
broken line, edits picked up without a restart, schedule titles, an intro and a logo."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from feedsvc import config as config_module
from feedsvc.model import utcnow
from feedsvc.newsletter.mail import OutboxMailer
from feedsvc.store import Store
from tests._net import free_port, wait_until_up
from tests._seed import add_readers, entries_before_digest
from tests.e2e.test_cli import feedsvc

LOGO = "https://baohatinh.vn/logo.png"


def newsroom(tmp_path: Path, port: int = 8080) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""\
site:
  title: "Báo Hà Tĩnh — Bản tin"
  base_url: "http://127.0.0.1:{port}"
  logo_url: "{LOGO}"
http:
  port: {port}
sources:
  - id: xa-hoi
    url: "https://baohatinh.vn/rss/xa-hoi.rss"
    categories: [xa-hoi]
categories:
  - id: xa-hoi
    title: "Xã hội"
newsletter:
  from: "Bản tin Hà Tĩnh <bantin@example.vn>"
  schedules:
    test5m:
      cron: "*/5 * * * *"
      title: {{vi: "Năm phút một lần", en: "Every five minutes"}}
      intro: {{vi: "Tin nóng trong năm phút qua.", en: "The last five minutes' news."}}
  default_schedule: test5m
""",
        encoding="utf-8",
    )
    return path


def test_check_points_at_the_broken_line_of_an_override(tmp_path: Path) -> None:
    config = newsroom(tmp_path)
    own = tmp_path / "templates" / "email"
    own.mkdir(parents=True)
    (own / "digest.txt").write_text("{{ site_title }}\n{% for s in sections %}\n", "utf-8")
    (own / "confirm.html").write_text("<p>{{ 1 // 0 }}</p>\n", "utf-8")
    checked = feedsvc("check", config=config)
    assert checked.returncode == 1
    assert "Traceback" not in checked.stderr
    lines = checked.stderr.splitlines()
    assert any(line.startswith("templates/email/digest.txt:2: ") for line in lines), lines
    assert "templates/email/confirm.html:1: ZeroDivisionError" in checked.stderr


def test_an_override_replaces_one_file_and_the_titles_intro_and_logo_show(
    tmp_path: Path,
) -> None:
    path = newsroom(tmp_path)
    own = tmp_path / "templates" / "email"
    own.mkdir(parents=True)
    (own / "_footer_note.txt").write_text("Tòa soạn: 58 Phan Đình Phùng\n", "utf-8")
    config = config_module.load(path)
    store = Store.open(config.database_url)
    seen = entries_before_digest(config, store, ["Tin 1: Hà Tĩnh"], utcnow())
    add_readers(store, 1, schedule="test5m", since=seen)
    store.close()
    assert feedsvc("check", config=path).returncode == 0
    feedsvc("digest", "send", "test5m", "--now", config=path, check=True)
    [message] = OutboxMailer(config.outbox_path).messages()
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Tòa soạn: 58 Phan Đình Phùng" in text  # the override
    assert "Tin 1: Hà Tĩnh" in text  # the packaged digest around it
    assert "Tin nóng trong năm phút qua." in text
    [reason] = [line for line in text.splitlines() if line.startswith("Bạn nhận bản tin")]
    assert "năm phút một lần" in reason.lower()
    assert "test5m" not in reason
    assert f'src="{LOGO}"' in html


def test_pages_show_schedule_titles_and_edited_templates_without_a_restart(
    tmp_path: Path,
) -> None:
    port = free_port()
    path = newsroom(tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "FEEDSVC_SECRET_KEY"}
    command = [sys.executable, "-m", "feedsvc", "serve", "--config", str(path)]
    server = subprocess.Popen(command, env=env)
    try:
        wait_until_up(f"{base}/healthz")
        home = fetch(f"{base}/")
        assert "Năm phút một lần" in home
        assert ">Test5m<" not in home
        assert ">test5m<" not in home
        own = tmp_path / "templates" / "web"
        own.mkdir(parents=True)
        page = own / "test_email.html"
        page.write_text('{% extends "web/base.html" %}{% block main %}Bản một{% endblock %}')
        assert "Bản một" in fetch(f"{base}/test-email")
        time.sleep(1.1)  # a new modification time
        page.write_text('{% extends "web/base.html" %}{% block main %}Bản hai{% endblock %}')
        assert "Bản hai" in fetch(f"{base}/test-email")
    finally:
        server.terminate()
        server.wait(timeout=20)


def fetch(url: str) -> str:
    with urllib.request.urlopen(url) as response:
        return str(response.read().decode())
