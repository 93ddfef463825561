"""Text as search sees it: words, each in its toned and its folded form.

Folding takes away case and every mark, tone and vowel alike ("Đường" → "duong",
"mưa" → "mua"), so a reader who types without Vietnamese input finds what was
written with it. Tones are still there in the toned form, which ranking uses to
put a toned query's exact matches first.

Index and query are cut into words by the same rule (:data:`WORD`) and the index
holds the folded words joined by single spaces, so SQLite FTS5 and PostgreSQL
full text see the same tokens and match alike.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from feedsvc._text import fold_diacritics

WORD = re.compile(r"[^\W_]+")
"""A word: a run of letters and digits (NFC text; punctuation and ``_`` separate)."""

MAX_WORD = 64
"""Longer runs are not words (URLs, base64, hostile input): neither indexed nor searched."""

MAX_INDEXED_WORDS = 1000
"""Words of an entry that are indexed (title first): a long article's lead finds it."""


@dataclass(frozen=True, slots=True)
class Word:
    """One word of a text: where it is, and its toned (caseless NFC) and folded forms."""

    start: int
    end: int
    toned: str
    folded: str


def fold(text: str) -> str:
    """``text`` caseless and without marks: what index and query are compared in."""
    return fold_diacritics(text)


def words(text: str) -> Iterator[Word]:
    """The words of ``text`` (normalized to NFC first; offsets are into that form)."""
    for match in WORD.finditer(nfc(text)):
        raw = match.group()
        if len(raw) <= MAX_WORD:
            toned = raw.casefold()
            yield Word(match.start(), match.end(), toned, fold(toned))


def nfc(text: str) -> str:
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def toned_words(text: str) -> list[str]:
    """The words of ``text``, caseless NFC, in order (no offsets: the fast path)."""
    return [w for w in WORD.findall(nfc(text).casefold()) if len(w) <= MAX_WORD]


def folded_words(toned: list[str]) -> list[str]:
    """Each of ``toned`` folded. A language has few distinct words (Vietnamese some
    thousands of syllables), so each is folded once and remembered."""
    cache = _FOLDED
    if len(cache) > _FOLDED_MAX:
        cache.clear()
    return [cache.get(w) or cache.setdefault(w, fold(w)) for w in toned]


_FOLDED: dict[str, str] = {}
_FOLDED_MAX = 200_000


def index_words(title: str, body: str) -> tuple[list[str], int]:
    """The folded words an entry is indexed by (title first, at most
    :data:`MAX_INDEXED_WORDS`), and how many of them are the title's."""
    toned = toned_words(title)
    titled = len(toned)
    toned += toned_words(body)[: max(0, MAX_INDEXED_WORDS - titled)]
    return folded_words(toned), min(titled, MAX_INDEXED_WORDS)


def index_text(title: str, body: str) -> str:
    """The folded words of an entry's title and body text, as the index stores them."""
    return " ".join(index_words(title, body)[0])


BODY_CHARS = 8000
"""Of an entry's stored content (HTML), what is read for its body text."""


def entry_body(summary: str, content: str) -> str:
    """The text of an entry that search reads besides its title: the summary (plain text),
    else the text of its content."""
    return summary.strip() or plain_text(content[:BODY_CHARS])


_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def plain_text(html_fragment: str) -> str:
    """What a reader sees of a stored (sanitized) HTML fragment, on one line."""
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", html_fragment))).strip()
