"""The `feedsvc` command as an operator runs it: a real process, a real feed server."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedsvc import config as config_module
from feedsvc.store import Store
from tests._seed import entries_before_digest
from tests.feedserver import ThreadedFeedServer

FEEDS = Path(__file__).parents[1] / "data" / "feeds"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedFeedServer]:
    root = tmp_path_factory.mktemp("feeds")
    for path in FEEDS.glob("*"):
        (root / path.name).write_bytes(path.read_bytes())
    with ThreadedFeedServer(root) as running:
        yield running


def make_config(tmp_path: Path, sources: dict[str, str], extra: str = "") -> Path:
    lines = [
        "site:",
        '  title: "Bản tin thử"',
        '  base_url: "http://127.0.0.1:8080"',
        "fetch:",
        "  allow_private_networks: true",
        "  timeout: 10s",
        "categories:",
        "  - id: xa-hoi",
        '    title: "Xã hội"',
        "sources:",
    ]
    for source_id, url in sources.items():
        lines += [f"  - id: {source_id}", f'    url: "{url}"', "    categories: [xa-hoi]"]
    path = tmp_path / "config.yaml"
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def feedsvc(*args: str, config: Path, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "feedsvc", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=check,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_check_lists_every_problem_without_a_traceback(tmp_path: Path) -> None:
    config = make_config(tmp_path, {"a": "https://x.vn/a.xml"}, "fetch:\n  timeout: soon\n")
    config.write_text(config.read_text().replace("categories: [xa-hoi]", "categories: [xa-hio]"))
    result = feedsvc("check", config=config)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"{config}:13: source 'a' refers to unknown category 'xa-hio'" in result.stderr
    assert f"{config}:14: duplicate key 'fetch'" in result.stderr
    assert "problems found" in result.stderr


def test_poll_then_sources_list(tmp_path: Path, server: ThreadedFeedServer) -> None:
    config = make_config(
        tmp_path,
        {
            "xa-hoi": server.url("/feeds/baohatinh-xa-hoi.rss"),
            "broken": server.url("/status/503?retry_after=120"),
        },
    )
    polled = feedsvc("poll", config=config)
    assert polled.returncode == 0, polled.stderr
    assert "xa-hoi" in polled.stdout
    assert "updated" in polled.stdout
    assert "HTTP 503" in polled.stdout
    assert "2 polled, 5 new, 1 failed" in polled.stdout
    # Each outcome is in the table: stderr has the failure, not a line per source.
    assert "polled source=broken status=error" in polled.stderr
    assert "source=xa-hoi" not in polled.stderr
    listed = feedsvc("sources", "list", "--json", config=config, check=True)
    health = {item["id"]: item for item in json.loads(listed.stdout)}
    assert health["xa-hoi"]["status"] == "ok"
    assert health["xa-hoi"]["entries"] == 5
    broken = health["broken"]
    assert broken["status"] == "backoff"
    assert broken["error_count"] == 1
    assert "HTTP 503" in broken["last_error"]
    assert broken["next_poll_at"]
    for key in ("url", "last_polled_at"):
        assert key in broken


def test_unknown_source_is_a_one_line_error(tmp_path: Path) -> None:
    config = make_config(tmp_path, {"xa-hoi": "https://x.vn/a.xml"})
    result = feedsvc("poll", "xa-hio", config=config)
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: unknown source id 'xa-hio' (did you mean 'xa-hoi'?)"


def test_unreachable_source_reports_its_error(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = make_config(tmp_path, {"nowhere": f"http://127.0.0.1:{port}/rss.xml"})
    result = feedsvc("poll", config=config)
    assert result.returncode == 0, result.stderr
    assert "nowhere" in result.stdout
    assert "error" in result.stdout
    assert "Traceback" not in result.stderr


def big_feed(count: int) -> bytes:
    item = (
        "<item><title>Tin {n}: Trẻ em Hà Tĩnh được chăm sóc tốt hơn</title>"
        "<link>https://baohatinh.vn/tin-{n}.html</link>"
        "<guid>https://baohatinh.vn/tin-{n}.html</guid>"
        "<description><![CDATA[<p>Sáng 19/6, Sở LĐTB&XH tỉnh tổ chức hội nghị {n}.</p>]]>"
        "</description>"
        "<pubDate>Sat, 28 Nov 2026 07:30:00 +0700</pubDate></item>"
    )
    items = "".join(item.format(n=n) for n in range(count))
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Lớn</title>'
        f"<link>https://baohatinh.vn/</link><description>x</description>{items}</channel></rss>"
    ).encode()


def wait_for_write(wal: Path, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Return once the SQLite write-ahead log grows: the store's transaction is under way."""
    start = wal.stat().st_size if wal.exists() else 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if wal.exists() and wal.stat().st_size > start + 64 * 1024:
            return
        time.sleep(0.002)


def test_kill_9_while_storing_leaves_all_or_nothing(
    tmp_path: Path, server: ThreadedFeedServer
) -> None:
    count = 2000
    server.write("big.rss", big_feed(count))
    # A short lease, so the killed process's claim expires quickly (default: 5 minutes).
    config = make_config(tmp_path, {"big": server.url("/feeds/big.rss")})
    settings = "  timeout: 10s\n  lease: 1s\n  max_entries: 5000"  # every item, not the first 500
    config.write_text(config.read_text().replace("  timeout: 10s", settings))
    database = tmp_path / "var" / "feedsvc.db"
    seen = set()
    for _ in range(6):  # until a kill lands before the commit (the write is quick)
        for path in database.parent.glob("feedsvc.db*"):
            path.unlink()
        feedsvc("db", "upgrade", config=config, check=True)
        process = subprocess.Popen(
            [sys.executable, "-m", "feedsvc", "poll", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_write(Path(f"{database}-wal"), process)
        process.send_signal(signal.SIGKILL)
        process.wait()
        with sqlite3.connect(database) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            stored = db.execute("SELECT count(*) FROM entries").fetchone()[0]
        assert stored in (0, count)  # never a partial feed
        seen.add(stored)
        if not stored:
            break
    time.sleep(1.1)  # the dead process's lease expires
    assert 0 in seen  # at least one kill landed before the commit
    finished = feedsvc("poll", config=config, check=True)
    assert "Traceback" not in finished.stderr
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*), count(DISTINCT identity) FROM entries").fetchone() == (
            count,
            count,
        )


def test_digest_preview_and_dry_run_show_without_sending(tmp_path: Path) -> None:
    config_path = make_config(tmp_path, {"xa-hoi": "https://baohatinh.vn/rss/xa-hoi.rss"})
    config = config_module.load(config_path)
    store = Store.open(config.database_url)
    entries_before_digest(config, store, [f"Tin {n}: Trẻ em" for n in range(3)])
    store.close()
    feedsvc("subscribers", "add", "an@example.vn", "--confirmed", config=config_path, check=True)
    preview = feedsvc(
        "digest", "preview", "daily", "an@example.vn", "--latest", config=config_path, check=True
    )
    head, subject = preview.stdout.splitlines()[:2]
    assert head.startswith("latest daily edition for an@example.vn, period ")
    assert head.endswith(": 3 stories")
    assert "(3 tin mới)" in subject
    assert "Tin 2: Trẻ em" in preview.stdout
    dry = feedsvc("digest", "send", "daily", "--dry-run", config=config_path, check=True)
    assert "an@example.vn" in dry.stdout
    assert "nothing sent" in dry.stdout
    assert not (tmp_path / "var" / "outbox").exists()
    sent = feedsvc("digest", "send", "daily", config=config_path, check=True)
    assert "1 sent" in sent.stdout
    assert len(list((tmp_path / "var" / "outbox").glob("*.eml"))) == 1
