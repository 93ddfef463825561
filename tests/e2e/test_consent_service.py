"""`feedsvc run` sends confirmation emails from its queue: at once after a sign-up on its
form, and, from its confirmations job, rows that no running process was going to send
(queued by a process that died)."""

from __future__ import annotations

import http.cookiejar
import re
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

from feedsvc import config as config_module
from feedsvc.model import utcnow
from feedsvc.newsletter import consent
from feedsvc.newsletter.roster import Signup
from feedsvc.store import Store
from tests._net import free_port, wait_until_up
from tests.e2e.test_service import wait_for
from tests.smtpserver import ThreadedSmtpServer

CONFIG = """\
site:
  title: "Báo Hà Tĩnh — Bản tin"
  base_url: "http://127.0.0.1:{port}"
http:
  port: {port}
categories:
  - id: xa-hoi
    title: "Xã hội"
newsletter:
  from: "Bản tin Hà Tĩnh <bantin@example.vn>"
mail:
  backend: smtp
  smtp: {{host: 127.0.0.1, port: {smtp}, starttls: false}}
"""


def sign_up_on_the_form(base: str, email: str) -> None:
    browser = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    with browser.open(f"{base}/", timeout=10) as response:
        page = response.read().decode()
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    form = {"csrf_token": match.group(1), "email": email, "category": "xa-hoi", "locale": "vi"}
    form["schedule"] = "daily"
    body = urllib.parse.urlencode(form).encode()
    with browser.open(f"{base}/subscribe", data=body, timeout=10) as response:
        assert response.status == 200


def test_run_sends_confirmations_from_the_queue(tmp_path: Path) -> None:
    with ThreadedSmtpServer() as smtp:
        port = free_port()
        path = tmp_path / "config.yaml"
        path.write_text(CONFIG.format(port=port, smtp=smtp.port), encoding="utf-8")
        config = config_module.load(path)
        store = Store.open(config.database_url)
        try:  # queued by a web process that died before it sent it
            signup = Signup("bi.bo.lai@example.vn", ("xa-hoi",), "daily", "vi")
            consent.sign_up(config, store, signup, origin="web", now=utcnow())
        finally:
            store.close()
        service = subprocess.Popen(
            [sys.executable, "-m", "feedsvc", "run", "--config", str(path)],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_up(f"{base}/healthz")
            wait_for(lambda: smtp.recipients.get("bi.bo.lai@example.vn"), 60, "the queued email")
            sign_up_on_the_form(base, "ban.doc@example.vn")
            wait_for(lambda: smtp.recipients.get("ban.doc@example.vn"), 10, "the form's email")
            service.send_signal(signal.SIGTERM)
            code = service.wait(timeout=30)
        finally:
            if service.poll() is None:
                service.kill()
            log = service.communicate()[1] if service.stderr else ""
    assert code == 0, log
    assert dict(smtp.recipients) == {"ban.doc@example.vn": 1, "bi.bo.lai@example.vn": 1}
