"""Text hygiene shared by every stage that handles publisher text.

Feeds arrive in NFC, NFD or a legacy code page (windows-1258 decodes to
*decomposed* Vietnamese), with stray control characters and padding. Everything
feedsvc stores, compares or re-publishes goes through :func:`clean_text` or
:func:`clean_line` first, so the same article gives the same bytes whichever
way its publisher encoded it, and nothing we emit is invalid XML 1.0.
"""

from __future__ import annotations

import re
import unicodedata

# Code points that are invalid in XML 1.0 or are control characters: C0 except
# TAB/LF (CR is folded into LF first), DEL, C1, lone surrogates, U+FFFE/U+FFFF.
_INVALID = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_NEWLINES = re.compile("\r\n?")
_ELLIPSIS = "…"
_D_STROKE = str.maketrans({"đ": "d", "Đ": "D"})


def clean_text(s: str) -> str:
    """Return ``s`` in NFC with control and XML-invalid characters removed.

    Line breaks survive (CRLF and lone CR become LF) so multi-line text keeps
    its shape; use :func:`clean_line` for anything that must be one line.
    """
    s = remove_invalid_chars(s)
    if not unicodedata.is_normalized("NFC", s):
        s = unicodedata.normalize("NFC", s)
    return s


def remove_invalid_chars(s: str) -> str:
    """Return ``s`` without control and XML-invalid characters, CR/CRLF folded into LF.

    Unlike :func:`clean_text` this never normalizes, so it is safe to apply to
    already-sanitized HTML (see ``ingest._html.sanitize_html``).
    """
    if "\r" in s:
        s = _NEWLINES.sub("\n", s)
    return _INVALID.sub("", s)


def clean_line(s: str) -> str:
    """Return ``s`` as one trimmed NFC line: every whitespace run becomes one space.

    Used for titles, guids, links, authors and category terms, which end up in
    mail headers and XML attributes where a CR/LF would be an injection.
    """
    return " ".join(clean_text(s).split())


def fold_diacritics(s: str) -> str:
    """Return a caseless, accentless form of ``s`` for keyword matching.

    "Đảng" and "dang" both fold to "dang", so a keyword typed without Vietnamese
    input still matches. ``đ`` is a separate letter, not d plus a mark, so NFD
    alone would keep it; it is mapped explicitly.
    """
    decomposed = unicodedata.normalize("NFD", s.translate(_D_STROKE))
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return stripped.casefold()


def shorten(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters on a word boundary, adding "…".

    A cut inside a word reads as a typo; a cut at the last space does not. If the
    text has no space in its second half (one very long word), cut hard.
    """
    if len(text) <= limit:
        return text
    cut = text[:limit]  # the last space in here leaves room for the ellipsis
    head, space, _ = cut.rpartition(" ")
    if not space or len(head) < limit // 2:
        head = cut[:-1]
    return (head.rstrip(" ,;:.-–—") or head) + _ELLIPSIS
