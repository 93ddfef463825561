"""Vietnamese text as syllables to match on: tones folded, stop syllables known.

Vietnamese writes one syllable per space-separated token, and most words are
one or two syllables, so syllables and syllable pairs are the units compared
here (no word segmenter needed). For matching, the tone marks are folded
(grave, acute, hook, tilde, dot below) but the vowel letters are kept: "hòa"
and "hoà" are the same syllable written in the old and the new tone placement,
and "thủy"/"thuỷ" likewise, while "mưa" (rain) and "mua" (buy) are not.
``đ`` stays a letter of its own for the same reason.

Numbers are tokens too, written without thousands separators ("2.343" and
"2343" match); dates split into their parts ("19/5", "19-5" and "19.5" all
give "19", "5"), because outlets spell them differently.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from feedsvc._text import clean_text

_TAG = re.compile(r"<[^>]*>")
# A number with thousands separators, a plain number, or a run of letters.
_TOKEN = re.compile(r"\d{1,3}(?:[.,]\d{3})+(?![\d])|\d+|[^\W\d_]+")
_SEPARATORS = str.maketrans("", "", ".,")
_TONES = frozenset("\u0300\u0301\u0303\u0309\u0323")  # grave, acute, tilde, hook, dot below
_SENTENCES = re.compile(r"[.!?:;…](?=\s|$)|\n")

# Function syllables that say nothing about a story's subject. They still
# count (a little) in similarity, since "bị" or "đã" in a pair of syllables
# can carry meaning, but they never decide it. English function words are
# here for the English-language sources.
STOP_SYLLABLES = frozenset(
    """
    của và các những là có được cho với trong đã đang sẽ này đó khi thì mà để
    về từ theo tại trên dưới ra vào lên một đến cũng nhiều như vẫn nên nếu bị do
    vì hay hoặc rằng không chưa rất lại nhằm cùng việc sự cuộc còn hơn nhất ở
    đây đấy nào ai gì bao sau trước qua nay hôm ngày tháng năm sáng chiều tối
    đêm vừa mới chỉ đều vẫn thêm hết tới gồm có làm người
    the a an and or of to in on at for by with from is are was were be been
    has have had it its this that as but not into
    """.split()
)


@dataclass(frozen=True, slots=True)
class Syllable:
    """One token of a text: its matching form, and what kind of word it is.

    ``name`` is true for a capitalised word that does not start a sentence
    ("Hà", "Tĩnh", "Thạch"): proper names and the places they tell apart.
    ``stop`` is decided on the word *with* its tones, since folding makes
    stop syllables collide with content ones: "tại" (at) and "tai" (in "tai
    nạn", accident), "mà" and "ma" (in "ma túy", drugs) fold alike.
    """

    text: str
    name: bool = False
    stop: bool = False


def plain_text(markup: str) -> str:
    """``markup`` (sanitized HTML or plain text) as plain NFC text."""
    if "<" in markup:
        markup = _TAG.sub(" ", markup)
    if "&" in markup:
        markup = html.unescape(markup)
    return clean_text(markup)


@lru_cache(maxsize=65536)
def fold(word: str) -> str:
    """``word`` lower-cased with its tone marks removed ("Tĩnh" → "tinh", "Đường" → "đương").

    Cached: a language has a few thousand syllables, and folding each anew
    was the largest cost of reading a text.
    """
    decomposed = unicodedata.normalize("NFD", word.lower())
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in _TONES))


@lru_cache(maxsize=65536)
def _syllable(word: str, name: bool) -> Syllable:
    """The (immutable, shared) syllable of one word: a text has few distinct ones."""
    if word[0].isdigit():
        return Syllable(word.translate(_SEPARATORS))
    return Syllable(fold(word), name=name, stop=word.lower() in STOP_SYLLABLES)


def syllables(text: str) -> list[Syllable]:
    """The syllables of plain ``text`` in order, folded, each marked as a name or not."""
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)  # a decomposed mark would split a word
    found: list[Syllable] = []
    for sentence in _SENTENCES.split(text):
        first = True
        for word in _TOKEN.findall(sentence):
            found.append(_syllable(word, not first and word[0].isupper() and not word.isupper()))
            first = False
    return found
