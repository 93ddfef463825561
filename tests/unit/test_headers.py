"""The pages' Content-Security-Policy: what it allows, from the site's settings and the page."""

from __future__ import annotations

import base64
import hashlib

from feedsvc.web.headers import content_security_policy, inline_styles


def directives(policy: str) -> dict[str, list[str]]:
    return {name: sources for name, *sources in (d.split() for d in policy.split(";"))}


def test_the_logo_may_come_from_its_own_site() -> None:
    policy = directives(
        content_security_policy("https://bantin.example.vn/", "https://cdn.example.vn/logo.png")
    )
    assert policy["img-src"] == ["'self'", "https://bantin.example.vn", "https://cdn.example.vn"]
    assert policy["style-src"] == ["'self'", "https://bantin.example.vn"]
    assert policy["default-src"] == ["'none'"]


def test_each_inline_style_of_the_page_is_allowed_by_its_hash() -> None:
    css = "\n  .x { color: red; }\n"
    page = f"<html><head><style>{css}</style><style media='print'>{css}</style></head></html>"
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    assert inline_styles(page) == [f"'sha256-{digest}'"]
    assert inline_styles("<p>no style</p>") == []
