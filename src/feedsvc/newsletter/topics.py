"""Topics a subscriber follows by email: the rules for a list of them, and matching.

A topic is a word or a phrase (``đà nẵng``, ``bão``), kept as the subscriber typed it
(NFC, one line, single spaces) and matched folded: case, NFC/NFD, every Vietnamese
tone and vowel mark and ``đ``/``Đ`` (``_text.fold_diacritics``), so ``da nang``,
``ĐÀ NẴNG`` and ``Đà Nẵng`` are one topic. Matching is by whole syllables: a topic's
words must appear one after the other in a story's title or summary, so ``da`` does
not match ``dân`` (``dan``), and ``da nang`` matches ``Đà Nẵng`` and ``Đà-Nẵng`` but not
``Đà Lạt nắng``. Folding goes both ways: a toned topic also matches text typed
without tones (and ``nắng`` matches ``Nẵng``: both are ``nang`` once folded).

The rules, the same for the web form, ``feedsvc subscribers add --topic`` and CSV:

- at most :data:`MAX_TOPICS` topics, each at most :data:`MAX_CHARS` characters;
- empty topics are ignored, and so is a second topic that folds like an earlier one
  (the first spelling is kept);
- a topic with no letter or digit is an error (it could never match);
- ``;`` and line breaks separate topics (a form's text area holds one a line, a CSV
  cell ``đà nẵng; bão``), so no topic contains them.

Pure: text in, topics and matches out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, MutableMapping, Sequence

from feedsvc._text import clean_line, fold_diacritics
from feedsvc.model import Entry

MAX_TOPICS = 10
MAX_CHARS = 60
SEPARATORS = re.compile(r"[;\r\n]")
_WORD = re.compile(r"\w+")
# The i18n keys of what can be wrong with a list of topics (web forms show them translated).
TOO_MANY = "Follow at most 10 topics."
TOO_LONG = "A topic can be at most 60 characters long."
NO_WORD = "A topic needs at least one letter or digit."


class TopicError(ValueError):
    """A list of topics breaks a rule; ``reason`` is one of the keys above."""

    def __init__(self, reason: str, topic: str | None = None) -> None:
        super().__init__(f"topic {topic!r}: {reason}" if topic else reason)
        self.reason = reason


def check_topics(values: Iterable[str]) -> tuple[str, ...]:
    """The topics to store from what was typed (each value may hold several, ``;`` or
    line separated); TopicError if a rule is broken (see the module docstring)."""
    kept: dict[str, str] = {}
    for value in values:
        for part in SEPARATORS.split(value):
            topic = clean_line(part)
            if not topic:
                continue
            if len(topic) > MAX_CHARS:
                raise TopicError(TOO_LONG, topic[:MAX_CHARS] + "…")
            folded = words(topic)
            if not folded.strip():
                raise TopicError(NO_WORD, topic)
            kept.setdefault(folded, topic)
    if len(kept) > MAX_TOPICS:
        raise TopicError(TOO_MANY)
    return tuple(kept.values())


def parse_cell(cell: str) -> tuple[str, ...]:
    """A CSV cell's topics (``đà nẵng; bão``); TopicError if a rule is broken."""
    return check_topics([cell])


def write_cell(topics: Sequence[str]) -> str:
    """The CSV cell for ``topics``, read back by :func:`parse_cell`."""
    return "; ".join(topics)


def words(text: str) -> str:
    """``text`` as its folded words, each one between spaces: `` da nang ``."""
    return " " + " ".join(_WORD.findall(fold_diacritics(text))) + " "


def phrases(topics: Sequence[str]) -> tuple[str, ...]:
    """What ``topics`` match, sorted: each one's :func:`words`, so a phrase found in a
    story's words starts and ends on a word boundary. Also the digest cache's key."""
    return tuple(sorted({words(topic) for topic in topics}))


def matches(entry: Entry, wanted: Sequence[str], cache: MutableMapping[int, str]) -> bool:
    """Whether ``entry``'s title or summary holds any of ``wanted`` (from :func:`phrases`).

    ``cache`` keeps each entry's folded words by id, so a run that matches many
    subscribers' topics folds each entry once.
    """
    text = cache.get(entry.id)
    if text is None:
        text = cache[entry.id] = words(f"{entry.title}\n{entry.summary}")
    return any(p in text for p in wanted)
