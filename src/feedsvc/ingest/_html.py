"""Entry HTML made safe to show anywhere: sanitized, absolute, NFC; and its plain text.

Entry HTML ends up in feeds, web pages and emails, so it is cut down to an
allowlist with nh3 (ammonia): no scripts, styles, frames, forms, event handlers
or ``javascript:``/``data:`` URLs. nh3 also resolves relative ``href``/``src``
against the entry's base, which lets feedparser skip its own (much slower)
sanitizer and URI resolver.
"""

from __future__ import annotations

import functools
import html
import itertools
import re
import unicodedata

import nh3
from feedparser.mixin import _FeedParserMixin

from feedsvc._text import clean_line, clean_text, remove_invalid_chars

_TAGS = frozenset(
    {"a", "p", "br", "img", "ul", "ol", "li", "blockquote", "strong", "em", "b", "i"}
    | {"h2", "h3", "h4", "h5", "h6", "figure", "figcaption", "pre", "code", "hr", "sub", "sup"}
    | {"table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td"}
)
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height", "title"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "ol": {"start"},
}
# Removed with everything inside them: their text is code or a fallback, not prose.
_DROP_WITH_CONTENT = frozenset(
    {"script", "style", "iframe", "frame", "frameset", "object", "embed", "applet", "noscript"}
    | {"noembed", "noframes", "template", "form", "textarea", "select", "button", "svg", "math"}
)
_URL_SCHEMES = frozenset({"http", "https", "mailto"})
_LINK_REL = "noopener noreferrer"
# A space before each block boundary so "<p>a</p><p>b</p>" reads "a b", not "ab".
_BLOCK_START = re.compile(
    r"<(/?(?:p|div|br|li|ul|ol|h[1-6]|blockquote|tr|td|th|table|figure|figcaption|pre|dd|dt)\b)",
    re.IGNORECASE,
)
# Tag first, attribute second: each scan is bounded, so hostile markup stays linear.
_IMG_TAG = re.compile(r"<img\b([^>]{0,2000})", re.IGNORECASE)
_SRC = re.compile(r"""\ssrc\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
_IMG_TAGS_TRIED = 20
# Read as text, only what a browser never shows goes with its content: code, inert
# templates, and the elements whose content HTML reads as raw text. A title's
# "safe<object> description" reads "safe description", as in feedparser.
_HIDDEN = frozenset({"script", "style", "template", "iframe", "noembed", "noframes"})
_TO_TEXT = nh3.Cleaner(tags=set(), clean_content_tags=set(_HIDDEN), attributes={}, link_rel=None)


def sanitize_html(fragment: str, base: str | None) -> str:
    """Return ``fragment`` cut down to the allowlist, its URLs absolute against ``base``.

    Normalizing to NFC *after* sanitizing could fuse a tag's ``>`` with a
    following combining mark (U+0338) into one character and reopen the tag, so
    the input is normalized first, and in the rare case that decoded character
    references leave the output non-NFC, the normalized output is sanitized again.
    """
    cleaner = _cleaner(base)
    safe = remove_invalid_chars(cleaner.clean(clean_text(fragment)))
    if not unicodedata.is_normalized("NFC", safe):  # only via character references
        safe = remove_invalid_chars(cleaner.clean(unicodedata.normalize("NFC", safe)))
    return safe


def html_to_text(fragment: str) -> str:
    """Return the text a reader sees in ``fragment``: tags gone, entities decoded, one line."""
    spaced = _BLOCK_START.sub(r" <\1", fragment)
    return clean_line(html.unescape(_TO_TEXT.clean(clean_text(spaced))))


def looks_like_html(text: str) -> bool:
    """Tell whether feedparser would call ``text`` HTML, had it been an RSS title.

    Its rule: a closing tag or an entity reference, every tag a harmless one
    and every entity a known one. Fields feedparser gives no type (authors,
    categories) are read by the same rule as titles.
    """
    return bool(_FeedParserMixin.looks_like_html(text))


def cut_between_tags(fragment: str, limit: int) -> str:
    """Return ``fragment`` cut to at most ``limit`` characters, before a tag if it must be cut.

    The sanitizer closes whatever the cut leaves open.
    """
    if len(fragment) <= limit:
        return fragment
    cut = fragment.rfind("<", 0, limit + 1)
    return fragment[: cut if cut > 0 else limit]


def plain_to_html(text: str) -> str:
    """Return plain ``text`` as an HTML fragment that shows the same characters and lines."""
    return html.escape(text, quote=False).replace("\n", "<br>")


def first_image(fragment: str) -> str | None:
    """Return the ``src`` of the first ``<img>`` in ``fragment``, entities decoded, as written."""
    for tag in itertools.islice(_IMG_TAG.finditer(fragment), _IMG_TAGS_TRIED):
        match = _SRC.search(tag.group(1))
        if match:
            src = next(group for group in match.groups() if group is not None)
            return html.unescape(src).strip() or None
    return None


@functools.lru_cache(maxsize=64)
def _cleaner(base: str | None) -> nh3.Cleaner:
    """Build (once per base URL) the cleaner that makes relative URLs absolute.

    Without a usable absolute base a relative URL could only be guessed, so it
    is dropped instead.
    """
    try:
        return _make_cleaner(("rewrite_with_base", base) if base else "deny")
    except ValueError:  # nh3 rejects a base that is not an absolute URL
        return _make_cleaner("deny")


def _make_cleaner(url_relative: nh3.UrlRelative) -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=set(_TAGS),
        clean_content_tags=set(_DROP_WITH_CONTENT),
        attributes=_ATTRIBUTES,
        url_schemes=set(_URL_SCHEMES),
        link_rel=_LINK_REL,
        strip_comments=True,
        url_relative=url_relative,
    )
