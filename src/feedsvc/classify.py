"""Which categories an entry belongs to.

An entry is filed under the categories its source lists, plus every category
whose ``keywords`` occur in its title or summary, plus every category whose
``feed_categories`` name one of the entry's own ``<category>`` terms.

Matching runs on every stored entry (and again on all of them when config.yaml
changes), so each category's keywords are compiled once into a
:class:`Classifier` and each entry's text is normalized once per call.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from feedsvc._text import fold_diacritics
from feedsvc.config import Category
from feedsvc.model import Entry

# Title and summary are searched as one string; this separator is neither a word
# character nor whitespace (and clean_text strips it from stored text), so no
# keyword can match across the seam.
_SEAM = "\x00"

_Normalizer = Callable[[str], str]


def _exact(text: str) -> str:
    """Caseless NFC: diacritics matter, case does not."""
    return unicodedata.normalize("NFC", text.casefold())


def _folded(text: str) -> str:
    """Caseless and accentless: ``Đà Nẵng`` and ``da nang`` meet here."""
    return fold_diacritics(text)


def _keyword_pattern(keywords: Iterable[str]) -> re.Pattern[str] | None:
    """One regex matching any of ``keywords`` as whole words.

    Python's ``\\w`` is Unicode-aware, so ``(?<!\\w)``/``(?!\\w)`` treat ``ẻ`` and
    ``đ`` as letters: ``trẻ em`` does not match inside ``trẻ emm``. Lookarounds
    rather than ``\\b`` also work for keywords that start or end with a
    non-letter (``C++``). Inner whitespace matches any whitespace run.
    """
    alternatives = sorted(
        {r"\s+".join(re.escape(word) for word in keyword.split()) for keyword in keywords},
        key=len,
        reverse=True,
    )
    alternatives = [a for a in alternatives if a]
    if not alternatives:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)")


@dataclass(frozen=True, slots=True)
class _Rule:
    """One category's compiled matching rules."""

    id: str
    fold: bool  # match_diacritics is false: compare folded text
    keywords: re.Pattern[str] | None
    terms: frozenset[str]


class Classifier:
    """The categories of a configuration, compiled once, applied per entry."""

    def __init__(self, categories: Sequence[Category]) -> None:
        self._rules = tuple(_compile(category) for category in categories)
        self._needs_exact = any(not r.fold and (r.keywords or r.terms) for r in self._rules)
        self._needs_folded = any(r.fold and (r.keywords or r.terms) for r in self._rules)

    def __call__(self, entry: Entry, source_categories: Sequence[str]) -> tuple[str, ...]:
        """The ids of the categories ``entry`` belongs to, in config order.

        Args:
            entry: the stored entry (its title, summary and own category terms).
            source_categories: the category ids its source lists in config.yaml;
                ids the configuration does not define are ignored.
        """
        listed = set(source_categories)
        text = entry.title + _SEAM + entry.summary
        exact = _view(text, entry.categories, _exact) if self._needs_exact else None
        folded = _view(text, entry.categories, _folded) if self._needs_folded else None
        return tuple(
            rule.id
            for rule in self._rules
            if rule.id in listed or _matches(rule, folded if rule.fold else exact)
        )


@dataclass(frozen=True, slots=True)
class _View:
    """An entry's text and terms, normalized one way (exact or folded)."""

    text: str
    terms: frozenset[str]


def _view(text: str, terms: Iterable[str], normalize: _Normalizer) -> _View:
    return _View(normalize(text), frozenset(_term(t, normalize) for t in terms))


def _matches(rule: _Rule, view: _View | None) -> bool:
    if view is None:
        return False
    if rule.terms and not rule.terms.isdisjoint(view.terms):
        return True
    return rule.keywords is not None and rule.keywords.search(view.text) is not None


def _compile(category: Category) -> _Rule:
    fold = not category.match_diacritics
    normalize = _folded if fold else _exact
    keywords = _keyword_pattern(normalize(k) for k in category.keywords)
    terms = frozenset(_term(t, normalize) for t in category.feed_categories) - {""}
    return _Rule(category.id, fold, keywords, terms)


def _term(term: str, normalize: _Normalizer) -> str:
    """A category term as compared: normalized, with whitespace runs collapsed."""
    return " ".join(normalize(term).split())


def categories_for(
    entry: Entry, source_categories: Sequence[str], categories: Sequence[Category]
) -> tuple[str, ...]:
    """The ids of the categories ``entry`` belongs to, in config order.

    A convenience for one entry: it compiles ``categories`` on every call, so
    classify many entries with one :class:`Classifier` instead.
    """
    return Classifier(categories)(entry, source_categories)
