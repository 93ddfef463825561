"""The pages under their Content-Security-Policy, in a real browser: styled as before, and
the browser refuses nothing (a blocked style sheet or inline style would show as a
console error and an unstyled page), while no other site can frame them.

`feedsvc serve` runs as its own process, with the status page on.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._browser import browser, context  # noqa: F401 (browser is a fixture)
from tests._net import free_port, running
from tests.e2e.test_browser import CONFIG

TOKEN = "mã-trạng-thái-0123456789"
SERVED = CONFIG.replace("  port: {port}\n", "  port: {port}\n  status_page: true\n")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """``feedsvc serve`` with the status page on, on a free port; yields its address."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = tmp_path / "config.yaml"
    config.write_text(SERVED.format(base=base, port=port), encoding="utf-8")
    env = {**os.environ, "FEEDSVC_STATUS_TOKEN": TOKEN}
    env.pop("FEEDSVC_SECRET_KEY", None)
    command = [sys.executable, "-m", "feedsvc", "serve", "--config", str(config)]
    with running(command, f"{base}/healthz", env):
        yield base


def style(page: Any, selector: str, prop: str) -> str:
    return str(page.eval_on_selector(selector, f"e => getComputedStyle(e).{prop}"))


def test_pages_keep_their_styles_and_the_browser_refuses_nothing(
    browser: Any,  # noqa: F811 (the fixture)
    served: str,
) -> None:
    refused: list[str] = []
    session = context(browser, phone=False)
    page = session.new_page()
    page.on(
        "console",
        lambda message: (
            "Content Security Policy" in message.text
            and refused.append(f"{page.url}: {message.text}")
        ),
    )
    page.goto(f"{served}/")
    assert style(page, ".masthead", "backgroundColor") != "rgba(0, 0, 0, 0)"  # style.css
    page.goto(f"{served}/status?token={TOKEN}")
    assert style(page, ".status-page .table", "overflowX") == "auto"  # its inline <style>
    page.goto(f"{served}/no-such-page")
    assert refused == []
    session.close()


def test_another_site_cannot_frame_a_page(browser: Any, served: str) -> None:  # noqa: F811
    session = context(browser, phone=False)
    page = session.new_page()
    page.set_content(f'<iframe id="f" src="{served}/"></iframe>')  # about:blank, not our origin
    page.wait_for_timeout(1000)
    frame = page.frame_locator("#f")
    assert frame.locator(".masthead").count() == 0  # the browser refused to show it
    session.close()
