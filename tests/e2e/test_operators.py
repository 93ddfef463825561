"""`feedsvc run` looks after its operators: a source that answers 410 is one alert email,
and a report dropped in the bounce Maildir is read by the service's job, once — the CLI
then finds it processed."""

from __future__ import annotations

import email.policy
import signal
import subprocess
import sys
from email.parser import BytesParser
from pathlib import Path

from tests._net import free_port
from tests.e2e.test_service import wait_for
from tests.feedserver import ThreadedFeedServer

REPORT = Path(__file__).parents[1] / "data" / "bounces" / "unmatched-foreign.eml"


def test_run_alerts_on_a_gone_source_and_reads_the_bounce_mailbox(tmp_path: Path) -> None:
    maildir = tmp_path / "bounces"
    for folder in ("new", "cur", "tmp"):
        (maildir / folder).mkdir(parents=True)
    (maildir / "new" / "1764288000.M1P1.mail").write_bytes(REPORT.read_bytes())
    outbox = tmp_path / "outbox"
    with ThreadedFeedServer(tmp_path) as feeds:
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
sources:
  - id: chuyen-trang
    title: "Chuyên trang Du lịch"
    url: "{feeds.url("/status/410")}"
    categories: [xa-hoi]
categories:
  - id: xa-hoi
    title: "Xã hội"
newsletter:
  from: "Bản tin Hà Tĩnh <bantin@example.vn>"
mail:
  backend: outbox
  outbox_dir: {outbox}
  bounces:
    mailbox: {maildir}
    every: 1s
alerts:
  to: ["vanhanh@example.vn"]
""",
            encoding="utf-8",
        )
        command = [sys.executable, "-m", "feedsvc"]
        service = subprocess.Popen(
            [*command, "run", "--config", str(config)], stderr=subprocess.PIPE, text=True
        )
        try:
            wait_for(lambda: list(outbox.glob("alert-*.eml")), 60, "the alert")
            wait_for(lambda: list((maildir / "cur").iterdir()), 30, "the report read")
            service.send_signal(signal.SIGTERM)
            code = service.wait(timeout=30)
        finally:
            if service.poll() is None:
                service.kill()
            log = service.communicate()[1] if service.stderr else ""
        again = subprocess.run(
            [*command, "bounces", "process", str(REPORT), "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert code == 0, log
    [alert] = [
        BytesParser(policy=email.policy.default).parsebytes(p.read_bytes())
        for p in outbox.glob("alert-*.eml")
    ]
    assert alert["Subject"] == "[feedsvc] Nguồn tin Chuyên trang Du lịch đã ngừng hoạt động (410)"
    assert "report unmatched" in log
    assert "incident source=chuyen-trang kind=retired" in log
    assert again.stdout == f"{REPORT}: processed before: nothing changed\n", again.stderr
