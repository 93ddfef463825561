"""`feedsvc run` as an operator runs it: a real process polls a local feed server,
serves the feeds, sends a digest on its schedule to a local SMTP server, and exits
0 on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests._net import free_port
from tests.feedserver import ThreadedFeedServer
from tests.smtpserver import ThreadedSmtpServer


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return bytes(response.read())


def wait_for(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def fresh_feed() -> str:
    now = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    items = "".join(
        f"<item><title>Trẻ em Hà Tĩnh: tin {n}</title>"
        f"<link>https://baohatinh.vn/tin-{n}.html</link><pubDate>{now}</pubDate></item>"
        for n in range(5)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Xã hội</title><link>https://baohatinh.vn/</link><description>x</description>"
        f"{items}</channel></rss>"
    )


def test_run_polls_serves_sends_and_stops_cleanly(tmp_path: Path) -> None:
    root = tmp_path / "feeds"
    root.mkdir()
    with ThreadedFeedServer(root) as feeds, ThreadedSmtpServer() as smtp:
        port = free_port()
        config = tmp_path / "config.yaml"
        config.write_text(
            f"""\
site:
  title: "Báo Hà Tĩnh — Bản tin"
  base_url: "http://127.0.0.1:{port}"
http:
  port: {port}
fetch:
  allow_private_networks: true
  interval: 1h
sources:
  - id: xa-hoi
    url: "{feeds.url("/feeds/xa-hoi.rss")}"
    categories: [xa-hoi]
categories:
  - id: xa-hoi
    title: "Xã hội"
newsletter:
  from: "Bản tin Hà Tĩnh <bantin@example.vn>"
  schedules:
    minutely: "* * * * *"
  default_schedule: minutely
mail:
  backend: smtp
  smtp: {{host: 127.0.0.1, port: {smtp.port}, starttls: false}}
""",
            encoding="utf-8",
        )
        command = [sys.executable, "-m", "feedsvc"]
        subprocess.run(
            [
                *command,
                "subscribers",
                "add",
                "an@example.vn",
                "--confirmed",
                "--config",
                str(config),
            ],
            check=True,
            capture_output=True,
        )
        feeds.write("xa-hoi.rss", fresh_feed())  # dated now: news, not a new source's backlog
        service = subprocess.Popen(
            [*command, "run", "--config", str(config)],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for(
                lambda: b"Tr\xe1\xba\xbb em" in get(f"{base}/feeds/xa-hoi.rss"), 30, "the feed"
            )
            assert json.loads(get(f"{base}/healthz"))["status"] == "ok"
            wait_for(lambda: smtp.recipients.get("an@example.vn"), 75, "the digest")
            started = time.monotonic()
            service.send_signal(signal.SIGTERM)
            code = service.wait(timeout=30)
            stopped_in = time.monotonic() - started
        finally:
            if service.poll() is None:
                service.kill()
            log = service.communicate()[1] if service.stderr else ""
    assert code == 0, log
    assert stopped_in < 15
    assert smtp.recipients["an@example.vn"] == 1
    assert "polled source=xa-hoi status=updated new=5" in log
    assert "stopped" in log


def test_config_reload_adds_a_source_rejects_a_broken_file_and_recovers(tmp_path: Path) -> None:
    root = tmp_path / "feeds"
    root.mkdir()
    with ThreadedFeedServer(root) as feeds:
        feeds.write("a.rss", fresh_feed())
        feeds.write("b.rss", fresh_feed().replace("tin-", "khac-").replace("tin ", "khác "))
        port = free_port()
        config = tmp_path / "config.yaml"

        def write(sources: list[str], extra: str = "") -> None:
            listed = "".join(
                f'  - id: {name}\n    url: "{feeds.url(f"/feeds/{name}.rss")}"\n'
                "    categories: [xa-hoi]\n"
                for name in sources
            )
            config.write_text(
                f'site:\n  title: "Bản tin"\n  base_url: "http://127.0.0.1:{port}"\n'
                f"http:\n  port: {port}\nfetch:\n  allow_private_networks: true\n"
                f'categories:\n  - id: xa-hoi\n    title: "Xã hội"\n{extra}sources:\n{listed}',
                encoding="utf-8",
            )

        write(["a"])
        service = subprocess.Popen(
            [sys.executable, "-m", "feedsvc", "run", "--config", str(config)],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for(lambda: b"tin-0" in get(f"{base}/feeds/all.json"), 30, "source a")
            write(["a", "b"])
            wait_for(lambda: b"khac-0" in get(f"{base}/feeds/all.json"), 30, "the added source b")
            config.write_text(config.read_text() + "fetch:\n  timeout: soon\n", encoding="utf-8")
            time.sleep(5)  # seen within 2 s (the check), applied once steady for 1 s
            assert json.loads(get(f"{base}/healthz"))["status"] == "ok"  # still serving
            write(["b"], extra="retention:\n  days: 30\n")
            wait_for(lambda: json.loads(get(f"{base}/healthz"))["status"] == "ok", 10, "health")
            time.sleep(5)
            service.send_signal(signal.SIGTERM)
            assert service.wait(timeout=30) == 0
        finally:
            if service.poll() is None:
                service.kill()
            log = service.communicate()[1]
    assert (
        f"{config}:15: fetch.timeout: invalid duration 'soon'" in log
        or "duplicate key 'fetch'" in log
    )
    assert "config rejected: still running the previous configuration" in log
    assert log.count("config reloaded") == 2


def test_a_digest_missed_while_stopped_is_sent_once_on_start(tmp_path: Path) -> None:
    root = tmp_path / "feeds"
    root.mkdir()
    with ThreadedFeedServer(root) as feeds, ThreadedSmtpServer() as smtp:
        feeds.write("xa-hoi.rss", fresh_feed())
        port = free_port()
        config = tmp_path / "config.yaml"
        config.write_text(
            f'site:\n  title: "Bản tin"\n  base_url: "http://127.0.0.1:{port}"\n'
            f"http:\n  port: {port}\nfetch:\n  allow_private_networks: true\n  interval: 1h\n"
            f'sources:\n  - id: xa-hoi\n    url: "{feeds.url("/feeds/xa-hoi.rss")}"\n'
            '    categories: [xa-hoi]\ncategories:\n  - id: xa-hoi\n    title: "Xã hội"\n'
            'newsletter:\n  schedules:\n    minutely: "* * * * *"\n  default_schedule: minutely\n'
            "mail:\n  backend: smtp\n"
            f"  smtp: {{host: 127.0.0.1, port: {smtp.port}, starttls: false}}\n",
            encoding="utf-8",
        )
        feedsvc = [sys.executable, "-m", "feedsvc"]
        for args in (["subscribers", "add", "an@example.vn", "--confirmed"], ["poll"]):
            subprocess.run(
                [*feedsvc, *args, "--config", str(config)], check=True, capture_output=True
            )
        # The service is down while the next minute's digest time passes.
        time.sleep(61 - time.time() % 60)

        def run_briefly() -> str:
            service = subprocess.Popen(
                [*feedsvc, "run", "--config", str(config)], stderr=subprocess.PIPE, text=True
            )
            wait_for(lambda: get(f"http://127.0.0.1:{port}/healthz"), 30, "the service")
            time.sleep(2)  # start-up catch-up runs right after the first poll
            service.send_signal(signal.SIGTERM)
            assert service.wait(timeout=30) == 0
            return service.communicate()[1]

        first = run_briefly()
        second = run_briefly()  # a restart does not send the period again
    assert smtp.recipients["an@example.vn"] == 1, first + second
    assert "state=sent" in first


def source_config(port: int, feeds: ThreadedFeedServer, names: list[str], extra: str = "") -> str:
    """A config.yaml for a service on ``port`` polling ``names`` (and ``extra`` before them)."""
    listed = "".join(
        f'  - id: {name}\n    url: "{feeds.url(f"/feeds/{name}.rss")}"\n    categories: [xa-hoi]\n'
        for name in names
    )
    return (
        f'site:\n  title: "Bản tin"\n  base_url: "http://127.0.0.1:{port}"\n'
        f"http:\n  port: {port}\nfetch:\n  allow_private_networks: true\n  interval: 1h\n"
        f'categories:\n  - id: xa-hoi\n    title: "Xã hội"\n{extra}'
        + (f"sources:\n{listed}" if names else "")
    )


def reloads(log: str) -> list[str]:
    """The ``sources=N`` of every reload the service applied, in order."""
    return [
        next(part for part in line.split() if part.startswith("sources="))
        for line in log.splitlines()
        if "config reloaded" in line
    ]


def start_service(config: Path, port: int) -> subprocess.Popen[str]:
    service = subprocess.Popen(
        [sys.executable, "-m", "feedsvc", "run", "--config", str(config)],
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: get(f"http://127.0.0.1:{port}/healthz"), 30, "the service")
    return service


def stop_service(service: subprocess.Popen[str]) -> str:
    if service.poll() is None:
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
    return service.communicate()[1]


def test_a_save_in_progress_is_never_applied(tmp_path: Path) -> None:
    """An editor or `scp` writes the file in pieces; each piece is a truncated config."""
    root = tmp_path / "feeds"
    root.mkdir()
    names = ["a", "b", "c", "d"]
    with ThreadedFeedServer(root) as feeds:
        for name in names:
            feeds.write(f"{name}.rss", fresh_feed().replace("tin-", f"{name}-"))
        port = free_port()
        config = tmp_path / "config.yaml"
        config.write_text(source_config(port, feeds, names[:3]), encoding="utf-8")
        service = start_service(config, port)
        try:
            wait_for(lambda: b"c-0" in get(f"http://127.0.0.1:{port}/feeds/all.json"), 30, "c")
            text = source_config(port, feeds, names).encode()
            with config.open("wb") as file:  # 12 pieces over 3 s: every check sees a part
                for start in range(0, len(text), -(-len(text) // 12)):
                    file.write(text[start : start + -(-len(text) // 12)])
                    file.flush()
                    time.sleep(0.25)
            wait_for(lambda: b"d-0" in get(f"http://127.0.0.1:{port}/feeds/all.json"), 30, "d")
        finally:
            log = stop_service(service)
    assert "config rejected" not in log, log
    assert reloads(log) == ["sources=4"], log


def test_a_reload_that_removes_every_source_needs_an_explicit_empty_list(
    tmp_path: Path,
) -> None:
    root = tmp_path / "feeds"
    root.mkdir()
    with ThreadedFeedServer(root) as feeds:
        feeds.write("a.rss", fresh_feed())
        port = free_port()
        config = tmp_path / "config.yaml"
        config.write_text(source_config(port, feeds, ["a"]), encoding="utf-8")
        service = start_service(config, port)
        try:
            # Cut off before `sources:`: a valid file with no sources at all.
            config.write_text(source_config(port, feeds, []), encoding="utf-8")
            time.sleep(5)  # the change is seen within 2 s, and applied once steady for 1 s
            assert b"tin-0" in get(f"http://127.0.0.1:{port}/feeds/all.json")
            config.write_text(source_config(port, feeds, [], "sources: []\n"), encoding="utf-8")
            time.sleep(5)
        finally:
            log = stop_service(service)
    assert f"{config}:1: it removes every source; write `sources: []` to mean that" in log, log
    assert reloads(log) == ["sources=0"], log
