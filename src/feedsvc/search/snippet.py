"""The part of an entry's text that shows why it matched, its matching words marked.

Marks go on the original (toned) text: folding decides which words match, the
reader sees them as the publisher wrote them. The pieces are kept apart from
the markup so each shell writes them its own way: HTML-escaped with ``<mark>``
(:meth:`Snippet.html`), plain (:attr:`Snippet.text`), or styled in a terminal.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from feedsvc.search.fold import MAX_WORD, WORD, folded_words, nfc
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
    spans = [m.span() for m in WORD.finditer(text) if m.end() - m.start() <= MAX_WORD]
    folded = folded_words([text[a:b].casefold() for a, b in spans])
    whole = {w for term in query.terms for w in term.folded}
    prefixes = tuple(term.folded[-1] for term in query.terms if term.prefix)
    marked = [w in whole or (bool(prefixes) and w.startswith(prefixes)) for w in folded]
    total = len(spans)
    if window and total > LENGTH:
        first = next((i for i, hit in enumerate(marked) if hit), 0)
        start = max(0, min(first - BEFORE, total - LENGTH))
        spans, marked = spans[start : start + LENGTH], marked[start : start + LENGTH]
        head = _ELLIPSIS if start else ""
        tail = _ELLIPSIS if start + LENGTH < total else ""
        return _pieces(text, spans, marked, (spans[0][0], spans[-1][1]), (head, tail))
    return _pieces(text, spans, marked, (0, len(text)), ("", ""))


def _pieces(
    text: str,
    spans: list[tuple[int, int]],
    marked: list[bool],
    cut: tuple[int, int],
    frame: tuple[str, str],
) -> Snippet:
    """The pieces of ``text[cut[0]:cut[1]]``, between ``frame``'s head and tail."""
    head, tail = frame
    pieces: list[tuple[str, bool]] = [(head, False)] if head else []
    at = cut[0]
    for (start, end), hit in zip(spans, marked, strict=True):
        if hit:
            pieces.append((text[at:start], False))
            pieces.append((text[start:end], True))
            at = end
    pieces.append((text[at : cut[1]] + tail, False))
    return Snippet(tuple(p for p in pieces if p[0]))
