"""Vietnamese and English strings of the pages and emails, and choosing between them.

Two languages do not need gettext catalogues and a compile step: the strings live
here, keyed by their English text, and a test checks that every key has both.
Dates and numbers are Babel's business (``format_date`` with the locale).
"""

from __future__ import annotations

from collections.abc import Callable

LOCALES = ("vi", "en")

VI: dict[str, str] = {
    "Categories": "Chuyên mục",
    "Feeds": "Nguồn tin",
    "All categories": "Tất cả chuyên mục",
    "Every story from every source, newest first.": "Mọi tin từ mọi nguồn, mới nhất trước.",
    "Subscribe in your feed reader:": "Theo dõi bằng trình đọc tin:",
    "Add any of these addresses to Feedly, NetNewsWire, Thunderbird or another feed reader.": (
        "Thêm một trong các địa chỉ này vào Feedly, NetNewsWire, Thunderbird "
        "hoặc trình đọc tin khác."
    ),
    "All feeds as OPML": "Tất cả nguồn tin dạng OPML",
    "Page not found": "Không tìm thấy trang",
    "There is no feed at this address.": "Không có nguồn tin nào ở địa chỉ này.",
    "These are the feeds we publish:": "Các nguồn tin chúng tôi cung cấp:",
    "Back to the home page": "Về trang chủ",
    "Language": "Ngôn ngữ",
}

MESSAGES: dict[str, dict[str, str]] = {"vi": VI, "en": {key: key for key in VI}}


def translator(locale: str) -> Callable[[str], str]:
    """A ``_`` for templates; an unknown string shows as itself rather than failing."""
    table = MESSAGES.get(locale, MESSAGES["en"])
    return lambda text: table.get(text, text)


def negotiate(accept_language: str | None, default: str) -> str:
    """The best of our locales for an Accept-Language header (RFC 9110 12.5.4)."""
    best, best_q = default, 0.0
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        language = tag.strip().lower().split("-")[0]
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        if language in LOCALES and q > best_q:
            best, best_q = language, q
    return best
