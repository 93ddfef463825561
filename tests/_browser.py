"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, for every page.

``look(page, name)`` is what each browser test does on each page it visits: a
full-page screenshot under tests/e2e/screenshots/ (git-ignored) for a person to
look at, axe-core (bundled by axe-playwright-python) with no serious or critical
violation allowed, and no sideways scrolling on a phone-sized screen.

Without Chromium or Playwright a test skips and says why, except under CI (the CI
variable set), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PHONE = {"width": 360, "height": 780}
DESKTOP = {"width": 1280, "height": 900}
SCREENSHOTS = Path(__file__).parent / "e2e" / "screenshots"
SERIOUS = {"serious", "critical"}


def unavailable(reason: str) -> None:
    """Skip with the reason, or fail under CI, where every test must really run."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required when CI is set)")
    pytest.skip(reason)


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless Chromium; each test opens its own contexts (size, language)."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def context(browser: Any, *, phone: bool = True, locale: str = "vi-VN") -> Any:
    if phone:
        return browser.new_context(
            viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale=locale
        )
    return browser.new_context(viewport=DESKTOP, locale=locale)


def look(page: Any, name: str, request: pytest.FixtureRequest) -> None:
    """Screenshot ``page``, run axe-core on it, and check it fits a phone's width."""
    from axe_playwright_python.sync_playwright import Axe

    folder = SCREENSHOTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=folder / f"{name}.png", full_page=True)
    results = Axe().run(page)
    violations = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v.get("impact") in SERIOUS
    ]
    assert not violations, f"{name}: {violations}"
    width = page.viewport_size["width"]
    scrolled = page.evaluate("document.documentElement.scrollWidth")
    assert scrolled <= width, f"{name} is {scrolled}px wide on a {width}px screen"
