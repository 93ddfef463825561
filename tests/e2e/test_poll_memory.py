"""`feedsvc poll` of one huge feed: memory stays bounded, and what is left out is said.

A feed of 40,000 small items fits in the default ``fetch.max_bytes`` (10 MB). The
poll keeps the newest ``fetch.max_entries`` (500, by document order) and counts
the rest against the source; the process tree (the CLI, the fork server and the
parse workers) stays under 300 MB at its peak, sampled from outside through /proc.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from bench._measure import descendants, read_proc

from tests.e2e.test_cli import feedsvc, make_config
from tests.feedserver import ThreadedFeedServer

ITEMS = 40_000
MAX_BYTES = 10_000_000  # fetch.max_bytes' default
PEAK_LIMIT_MB = 300
_NEWEST = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def huge_feed(items: int, emoji: str = "") -> bytes:
    """An RSS 2.0 feed of ``items`` small items, newest first, as real feeds order them."""
    head = (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>Báo Hà Tĩnh — Tất cả {emoji}</title><link>https://baohatinh.example.vn/</link>"
        "<description>Mọi tin</description>\n"
    )
    parts = [head]
    for n in range(items):
        link = f"https://baohatinh.example.vn/tin-{n:05d}.html"
        published = format_datetime(_NEWEST - timedelta(minutes=n))
        parts.append(
            f"<item><title>Tin số {n} của Hà Tĩnh</title><link>{link}</link>"
            f"<guid>{link}</guid><pubDate>{published}</pubDate>"
            "</item>\n"
        )
    parts.append("</channel></rss>\n")
    return "".join(parts).encode()


def one_huge_entry() -> bytes:
    """One item whose description is nearly the whole 10 MB."""
    paragraph = "<p>" + "Hà Tĩnh đẩy mạnh chuyển đổi số trong các cơ quan nhà nước. " * 6 + "</p>"
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>Một tin</title>'
        "<item><title>Tin rất dài</title><guid>https://baohatinh.example.vn/dai.html</guid>"
        f"<description><![CDATA[{paragraph * 20_000}]]></description></item></channel></rss>\n"
    ).encode()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ThreadedFeedServer]:
    root = tmp_path / "feeds"
    root.mkdir()
    # An astral character makes Python hold the decoded text at 4 bytes a character.
    for name, body in (("huge.rss", huge_feed(ITEMS, "🎉")), ("long.rss", one_huge_entry())):
        assert len(body) < MAX_BYTES
        (root / name).write_bytes(body)
    with ThreadedFeedServer(root) as running:
        yield running


def tree_peak_mb(command: list[str], timeout: float = 300) -> tuple[float, float, str]:
    """Run ``command``; return the peak memory of its process tree (MB), wall time, stdout.

    The peak is the sum over the tree of each process's own high-water mark
    (VmHWM, kept by the kernel, so no peak falls between two samples): an upper
    bound, since pages a worker shares with the fork server count in both. The
    tree is walked every 20 ms. A child caught between fork and exec still
    shows its parent's memory; its mark is replaced once its command changes.
    """
    started = time.perf_counter()
    marks: dict[int, tuple[str, float]] = {}  # pid: (command line, VmHWM)
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    ) as child:
        while child.poll() is None:
            assert time.perf_counter() - started < timeout, "feedsvc poll did not finish"
            for pid in [child.pid, *descendants(child.pid)]:
                _mark(marks, pid)
            time.sleep(0.02)
        wall = time.perf_counter() - started
        stdout = child.stdout.read() if child.stdout else ""
    assert child.returncode == 0, stdout
    return sum(mark for _, mark in marks.values()), wall, stdout


def _mark(marks: dict[int, tuple[str, float]], pid: int) -> None:
    line, status = read_proc(f"/proc/{pid}/cmdline"), read_proc(f"/proc/{pid}/status")
    mark = _kb(status, "VmHWM:") / 1024
    if not line or not mark:
        return  # gone since the walk, or a zombie: its memory is already released
    seen, before = marks.get(pid, (line, 0.0))
    marks[pid] = (line, max(before, mark) if seen == line else mark)


def _kb(status: str, name: str) -> int:
    line = next((line for line in status.splitlines() if line.startswith(name)), "")
    return int(line.split()[1]) if line else 0


def poll_within_bound(tmp_path: Path, url: str) -> tuple[Path, str]:
    """``feedsvc poll`` of one source at ``url``; assert the tree's peak, return config, stdout."""
    config = make_config(tmp_path, {"huge": url})
    assert feedsvc("db", "upgrade", config=config).returncode == 0
    command = [sys.executable, "-m", "feedsvc", "poll", "--config", str(config)]
    peak, wall, stdout = tree_peak_mb(command)
    assert peak < PEAK_LIMIT_MB, f"peak {peak:.0f} MB over the process tree ({wall:.1f} s)"
    return config, stdout


def test_poll_of_40000_items_keeps_500_and_bounded_memory(
    tmp_path: Path, server: ThreadedFeedServer
) -> None:
    config, stdout = poll_within_bound(tmp_path, server.url("/feeds/huge.rss"))

    assert "500 new" in stdout
    assert f"{ITEMS - 500} entries left out" in stdout
    listed = json.loads(feedsvc("sources", "list", "--json", config=config).stdout)
    (huge,) = listed
    assert huge["entries"] == 500
    assert huge["status"] == "ok"
    assert f"{ITEMS - 500} entries left out" in huge["warning"]
    assert "fetch.max_entries" in huge["warning"]


def test_poll_of_one_10_mb_entry_keeps_bounded_memory(
    tmp_path: Path, server: ThreadedFeedServer
) -> None:
    _, stdout = poll_within_bound(tmp_path, server.url("/feeds/long.rss"))

    assert "1 new" in stdout
