"""Exact story identity as band-table keys (``stories.exact.exact_keys``).

``normalize_link`` and ``dedupe`` themselves are tested in test_identity.py and
test_dedupe.py.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

from feedsvc.model import Entry
from feedsvc.stories import exact

NOW = datetime(2025, 6, 1, tzinfo=UTC)
TITLE = "Tăng cường sự lãnh đạo của Đảng đối với công tác bảo vệ trẻ em"
LINK = "https://baohatinh.example.vn/tang-cuong-bao-ve-tre-em.html"


def entry(id: int, source: str, minutes: int, **fields: Any) -> Entry:
    fields.setdefault("title", TITLE)
    return Entry(
        id=id,
        source_id=source,
        identity=f"{source}:{id}",
        first_seen=NOW + timedelta(minutes=minutes),
        **fields,
    )


def test_exact_keys_match_for_a_utm_copy_and_not_for_another_title() -> None:
    keys = exact.exact_keys(LINK, None, TITLE)
    assert keys == exact.exact_keys(LINK + "?utm_medium=rss#top", None, "Another title")
    assert not exact.exact_keys(None, "12345", TITLE) & exact.exact_keys(None, "12345", "Khác")
    assert exact.exact_keys(None, "12345", TITLE) == exact.exact_keys(
        None, "12345", unicodedata.normalize("NFD", TITLE)
    )


def test_exact_keys_fit_a_signed_bigint() -> None:
    assert all(-(2**63) <= key < 2**63 for key in exact.exact_keys(LINK, "g", TITLE))
