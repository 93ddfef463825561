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
# Invisible characters that reorder or hide text in one-line fields: the bidi
# embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), the direction
# marks, and the zero-width characters. In a subject "Báo cáo \u202egpj.exe" reads
# "Báo cáo exe.jpg". A ZWJ between two emoji and the tag characters of an emoji flag
# are kept: they are how 👨‍👩‍👧 and 🏴󠁧󠁢󠁳󠁣󠁴󠁿 are spelled.
_EMOJI = (
    "\u00a9\u00ae\u203c\u2049\u2122\u2139\u2194-\u21aa\u231a-\u23ff\u24c2\u25aa-\u27bf"
    "\u2934\u2935\u2b05-\u2b55\u3030\u303d\u3297\u3299\U0001f000-\U0001faff"
)
_ZWJ_OUTSIDE_EMOJI = f"(?<![{_EMOJI}\ufe0f])\u200d|\u200d(?![{_EMOJI}])"
_TAGS_OUTSIDE_FLAG = "(?<![\U0001f3f4\U000e0020-\U000e007e])[\U000e0020-\U000e007f]+"
_INVISIBLE_CLASS = "\u061c\u180e\u200b\u200c\u200e\u200f\u202a-\u202e\u2061-\u2069\ufeff\U000e0001"
# U+2060 WORD JOINER moves nothing, and the renderer splits "@@" with it after
# cleaning so feed text cannot pass for a placeholder: clean_line keeps it,
# strip_invisible (for publisher text) does not.
_INVISIBLE_IN_LINES = re.compile(f"[{_INVISIBLE_CLASS}]|{_ZWJ_OUTSIDE_EMOJI}|{_TAGS_OUTSIDE_FLAG}")
_INVISIBLE = re.compile(f"[{_INVISIBLE_CLASS}\u2060]|{_ZWJ_OUTSIDE_EMOJI}|{_TAGS_OUTSIDE_FLAG}")
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
    mail headers and XML attributes where a CR/LF would be an injection, and in
    subjects where a bidi override or a zero-width character would disguise the
    text; those go too (see ``_INVISIBLE_IN_LINES``).
    """
    return " ".join(_INVISIBLE_IN_LINES.sub("", clean_text(s)).split())


def strip_invisible(s: str) -> str:
    """Return ``s`` without bidi controls and zero-width characters, word joiners included.

    For publisher text before it is stored: unlike :func:`clean_line` it also
    drops U+2060, which only feedsvc's own renderer has a use for.
    """
    return _INVISIBLE.sub("", s)


def fold_diacritics(s: str) -> str:
    """Return a caseless, accentless form of ``s`` for keyword matching.

    "Đảng" and "dang" both fold to "dang", so a keyword typed without Vietnamese
    input still matches. ``đ`` is a separate letter, not d plus a mark, so NFD
    alone would keep it; it is mapped explicitly. NFC and NFD input fold alike.
    Search folds every entry it indexes, so the common case (Latin letters) is
    one ``str.translate``; other scripts take the NFD path.
    """
    folded = s.casefold().translate(_FOLD)
    if folded.isascii():
        return folded
    decomposed = unicodedata.normalize("NFD", folded.translate(_D_STROKE))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _fold_table() -> dict[int, str | None]:
    """Latin letters with marks (Latin-1 to Latin Extended Additional) to their base letter,
    and the combining marks to nothing."""
    table: dict[int, str | None] = {ord("đ"): "d", ord("Đ"): "d"}
    for cp in [*range(0xC0, 0x250), *range(0x1E00, 0x1F00)]:
        base = "".join(
            c for c in unicodedata.normalize("NFD", chr(cp)) if not unicodedata.combining(c)
        )
        if base != chr(cp) and base.isascii():
            table[cp] = base.casefold()
    table.update(dict.fromkeys(range(0x300, 0x370)))
    return table


_FOLD = _fold_table()


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
