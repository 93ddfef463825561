"""The confirmation queue's sender against a real SMTP server on 127.0.0.1.

What a sign-up queued is sent even when nobody nudges it (the process that took
it died); a server that says "try later" gets it later; a message that cannot be
built fails its row with the reason instead of leaving it sending.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from feedsvc import config as config_module
from feedsvc.config import Config
from feedsvc.model import utcnow
from feedsvc.newsletter import confirmations, consent
from feedsvc.newsletter.mail import create_mailer
from feedsvc.newsletter.roster import Signup
from feedsvc.newsletter.tokens import Tokens
from feedsvc.store import Store
from feedsvc.store.schema import confirmations as queue
from tests.smtpserver import Fault, SmtpServer

CONFIG = """\
site:
  title: "Báo Hà Tĩnh — Bản tin"
  base_url: "https://bantin.example.vn"
categories:
  - id: xa-hoi
    title: "Xã hội"
newsletter:
  from: "Bản tin Hà Tĩnh <bantin@example.vn>"
mail:
  backend: smtp
  smtp:
    host: 127.0.0.1
    port: {port}
    starttls: false
  retry_delay: 200ms
  max_attempts: 3
"""


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    async with SmtpServer() as server:
        yield server


def make_config(tmp_path: Path, port: int, extra: str = "") -> Config:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(port=port) + extra, encoding="utf-8")
    return config_module.load(path)


def queue_signup(config: Config, store: Store, email: str) -> int:
    signup = Signup(email, ("xa-hoi",), "daily", "vi")
    return consent.sign_up(config, store, signup, origin="web", now=utcnow()).queued


async def run_job(config: Config, store: Store, owner: str = "job") -> dict[str, int]:
    mailer = create_mailer(config)
    try:
        tokens = Tokens(b"a-test-secret-of-some-length")
        return dict(await confirmations.run_queue(config, store, mailer, tokens, owner))
    finally:
        await mailer.close()


async def test_the_job_sends_what_a_dead_process_left_and_forgets_old_rows(
    tmp_path: Path, smtp: SmtpServer, store: Store
) -> None:
    config = make_config(tmp_path, smtp.port)
    queue_signup(config, store, "bi.bo.lai@example.vn")
    left = queue_signup(config, store, "dang.gui@example.vn")
    long_ago = utcnow() - timedelta(hours=1)  # claimed then by a process that died at once
    lease, spacing = timedelta(minutes=2), timedelta(0)
    claimed = store.confirmations.claim("dead", long_ago, lease=lease, spacing=spacing, only=[left])
    assert [c.id for c in claimed] == [left]
    assert await run_job(config, store) == {"sent": 2}
    assert sorted(smtp.recipients) == ["bi.bo.lai@example.vn", "dang.gui@example.vn"]
    assert await run_job(config, store) == {}  # nothing twice

    with store.engine.begin() as conn:
        conn.execute(
            sa.update(queue).values(created_at=utcnow() - confirmations.KEEP - timedelta(hours=1))
        )
    await run_job(config, store)
    assert store.confirmations.states() == {}


async def test_try_later_is_tried_again_later(
    tmp_path: Path, smtp: SmtpServer, store: Store
) -> None:
    config = make_config(tmp_path, smtp.port)
    smtp.script(Fault.TRY_LATER_AT_RCPT, recipient="cho.lat@example.vn", times=1)
    row = queue_signup(config, store, "cho.lat@example.vn")
    assert await run_job(config, store) == {"retry": 1}
    assert store.confirmations.outcomes([row])[row][0] == "queued"
    assert await run_job(config, store) == {}  # not due yet
    await asyncio.sleep(0.3)
    assert await run_job(config, store) == {"sent": 1}
    assert smtp.recipients["cho.lat@example.vn"] == 1


async def test_a_message_that_cannot_be_built_waits_for_a_valid_configuration(
    tmp_path: Path, smtp: SmtpServer, store: Store
) -> None:
    """An unreadable DKIM key: the row says why and is never left sending."""
    dkim = "  dkim:\n    domain: example.vn\n    selector: s\n    private_key_file: missing.pem\n"
    (tmp_path / "broken").mkdir()
    broken = make_config(tmp_path / "broken", smtp.port, dkim)
    row = queue_signup(broken, store, "khong.gui.duoc@example.vn")
    assert await run_job(broken, store) == {"retry": 1}
    state, detail = store.confirmations.outcomes([row])[row]
    assert state == "queued"
    assert detail is not None
    assert "missing.pem" in detail
    assert smtp.messages == []
    await asyncio.sleep(0.3)
    assert await run_job(make_config(tmp_path, smtp.port), store) == {"sent": 1}
