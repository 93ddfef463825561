"""The part of an entry's text that shows why it matched, its matching words marked.

Marks go on the original (toned) text: folding decides which words match, the
reader sees them as the publisher wrote them. The pieces are kept apart from
the markup so each shell writes them its own way: HTML-escaped with ``<mark>``
(:meth:`Snippet.html`), plain (:attr:`Snippet.text`), or styled in a terminal.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from feedsvc.search.fold import Word, nfc, words
from feedsvc.search.query import Query

BEFORE = 8
"""Words of context shown before the first match."""

LENGTH = 30
"""Words a snippet shows."""

_ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class Snippet:
    """Text in pieces, each marked (it matched) or not."""

    pieces: tuple[tuple[str, bool], ...]

    @property
    def text(self) -> str:
        return "".join(piece for piece, _ in self.pieces)

    def html(self) -> str:
        """The text HTML-escaped, each match in ``<mark>``."""
        return "".join(
            f"<mark>{html.escape(piece)}</mark>" if marked else html.escape(piece)
            for piece, marked in self.pieces
        )


def highlight(text: str, query: Query, *, window: bool = True) -> Snippet:
    """``text`` with the words matching ``query`` marked; with ``window``, only about
    :data:`LENGTH` words of it, from a little before the first match."""
    text = nfc(text)
    found = list(words(text))
    marked = [_matches(word, query) for word in found]
    total = len(found)
    if window and total > LENGTH:
        first = next((i for i, hit in enumerate(marked) if hit), 0)
        start = max(0, min(first - BEFORE, total - LENGTH))
        found, marked = found[start : start + LENGTH], marked[start : start + LENGTH]
        head = _ELLIPSIS if start else ""
        tail = _ELLIPSIS if start + LENGTH < total else ""
        return _pieces(text, found, marked, found[0].start, found[-1].end, head, tail)
    return _pieces(text, found, marked, 0, len(text), "", "")


def _pieces(
    text: str, found: list[Word], marked: list[bool], start: int, end: int, head: str, tail: str
) -> Snippet:
    pieces: list[tuple[str, bool]] = [(head, False)] if head else []
    at = start
    for word, hit in zip(found, marked, strict=True):
        if hit:
            pieces.append((text[at : word.start], False))
            pieces.append((text[word.start : word.end], True))
            at = word.end
    pieces.append((text[at:end] + tail, False))
    return Snippet(tuple(p for p in pieces if p[0]))


def _matches(word: Word, query: Query) -> bool:
    for term in query.terms:
        for i, wanted in enumerate(term.folded):
            last = i == len(term.folded) - 1
            if word.folded == wanted or (last and term.prefix and word.folded.startswith(wanted)):
                return True
    return False
