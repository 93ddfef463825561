"""feedparser's own test feeds (about 2,242, many deliberately broken) through parse_feed.

The only acceptable outcomes are a ParsedFeed or a ParseError: anything else
would stop a poll on one hostile body. And compared with plain feedparser on the
same bytes, every entry count and title must agree, or differ for one of the
reasons ``DIFFERENCES`` names (docs/architecture.md lists them too).

The sdist is downloaded from PyPI once and kept in pytest's cache directory
(``.pytest_cache``, already git-ignored by pytest); when the registry cannot be
reached the tests fail and say so: the comparison is part of ``make test``.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import feedparser
import pytest
from bench._measure import read_proc

from feedsvc._text import clean_line, strip_invisible
from feedsvc.errors import ParseError
from feedsvc.ingest.parse import parse_feed
from feedsvc.model import ParsedFeed
from feedsvc.stories.exact import normalize_link

VERSION = "6.0.14"
ARCHIVE = f"feedparser-{VERSION}.tar.gz"
SUFFIXES = (".xml", ".rdf", ".rss", ".atom")
NOW = datetime(2026, 11, 28, tzinfo=UTC)
GROWTH_LIMIT_MB = 100  # resident set over the whole corpus; the largest feed is a few KB
ZONE = "Asia/Ho_Chi_Minh"
HEADERS = {"Content-Type": "application/xml"}  # the same for both parsers


@pytest.fixture(scope="module")
def feedparser_sdist(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The feedparser sdist, downloaded with pip on first use and cached after."""
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    directory = (
        cache.mkdir("feedparser-sdist")
        if cache is not None
        else tmp_path_factory.mktemp("feedparser-sdist")
    )
    archive = directory / ARCHIVE
    if not archive.exists():
        _download(directory)
    if not archive.exists():
        pytest.fail(f"pip download produced no {ARCHIVE} in {directory}", pytrace=False)
    return archive


def _download(directory: Path) -> None:
    """Download into a folder of this process's own, then move the file into place in one
    step: another test process (pytest-xdist) may be reading or fetching it too."""
    own = directory / f"download-{os.getpid()}"
    command = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps"]
    command += ["--quiet", f"feedparser=={VERSION}", "-d", str(own)]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)
        os.replace(own / ARCHIVE, directory / ARCHIVE)
        shutil.rmtree(own, ignore_errors=True)
        return
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", None) or str(exc)
    last_line = (detail.strip().splitlines() or ["no output"])[-1]
    pytest.fail(
        f"cannot download the feedparser {VERSION} sdist from the package index "
        f"(is PyPI reachable?): {last_line}",
        pytrace=False,
    )


def _test_feeds(archive: Path) -> Iterator[tuple[str, bytes]]:
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = member.name.split("/")
            if member.isfile() and "tests" in parts[1:2] and member.name.endswith(SUFFIXES):
                stream = tar.extractfile(member)
                if stream is not None:
                    yield member.name, stream.read()


@dataclass(frozen=True, slots=True)
class Outcome:
    """parse_feed's result for one test feed: a feed, a refusal, or a crash (a bug)."""

    name: str
    body: bytes
    result: ParsedFeed | ParseError | str


@dataclass(frozen=True, slots=True)
class Run:
    outcomes: list[Outcome]
    growth_mb: float  # resident set after the run minus before


@pytest.fixture(scope="module")
def corpus_run(feedparser_sdist: Path) -> Run:
    """Every test feed through parse_feed once, for the tests below to judge."""
    feeds = list(_test_feeds(feedparser_sdist))
    before = _rss_mb()
    outcomes = [Outcome(name, body, _parse(name, body)) for name, body in feeds]
    return Run(outcomes, _rss_mb() - before)


def _parse(name: str, body: bytes) -> ParsedFeed | ParseError | str:
    try:
        return parse_feed(body, url=_url(name), headers=HEADERS, timezone=ZONE, now=NOW)
    except ParseError as error:
        return error
    except Exception as exc:  # collect them all, then fail once
        return f"{type(exc).__name__}: {exc}"


def _url(name: str) -> str:
    return f"https://feeds.example.com/{name}"


def _rss_mb() -> float:
    status = read_proc(f"/proc/{os.getpid()}/status")
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


@pytest.mark.network_download
def test_every_feedparser_test_feed_parses_or_is_refused(corpus_run: Run) -> None:
    outcomes = corpus_run.outcomes
    assert len(outcomes) > 2000
    crashed = [f"{o.name}: {o.result}" for o in outcomes if isinstance(o.result, str)]
    parsed = sum(isinstance(o.result, ParsedFeed) for o in outcomes)
    assert crashed == [], "\n".join(crashed)
    assert parsed > 0.95 * len(outcomes), f"only {parsed} of {len(outcomes)} parsed"
    assert corpus_run.growth_mb < GROWTH_LIMIT_MB, f"grew {corpus_run.growth_mb:.0f} MB"


# -- plain feedparser and parse_feed on the same bytes ---------------------------------------

# Every way parse_feed may differ from plain feedparser, by design (docs/architecture.md).
DIFFERENCES = {
    "identity merges": "entries sharing a guid, a normalized link or, with neither, every "
    "field a reader sees, are one entry (the first)",
    "sanitizing": "a title is one line of text: an HTML title's markup removed and its "
    "entities decoded, what a browser never shows (script, style, template, iframe…) dropped "
    "with its content, whitespace folded, NFC, control, bidi and zero-width characters removed",
    "refused entity declarations": "a document declaring XML entities is refused whole",
}
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
HIDDEN = frozenset({"script", "style", "template", "iframe", "noembed", "noframes"})


@dataclass(frozen=True, slots=True)
class Difference:
    name: str
    reason: str  # a key of DIFFERENCES, or "unexplained"
    detail: str


def compare(outcome: Outcome) -> list[Difference]:
    """How parse_feed's entries differ from plain feedparser's for one document."""
    name, body, ours = outcome.name, outcome.body, outcome.result
    url = _url(name)
    theirs = _entries(body, url)
    if not isinstance(ours, ParsedFeed):
        if not theirs:
            return []
        refused = "entity declarations" in str(ours) and b"<!ENTITY" in body
        reason = "refused entity declarations" if refused else "unexplained"
        return [Difference(name, reason, f"{len(theirs)} entries; ours: {ours}")]
    found: list[Difference] = []
    if len(ours.entries) != len(theirs):
        unique = _first_of_each(theirs)
        merged = len(unique) == len(ours.entries)
        detail = f"{len(theirs)} entries, ours {len(ours.entries)}"
        found.append(Difference(name, "identity merges" if merged else "unexplained", detail))
        if not merged:
            return found
        theirs = unique
    raw: list[Any] = []  # feedparser's entries unsanitized, read only if a title differs
    for position, (entry, mine) in enumerate(zip(theirs, ours.entries, strict=True)):
        title = str(dict.get(entry, "title") or "")
        if title != mine.title:
            raw = raw or _unsanitized(body, url, merged=len(theirs) != len(ours.entries))
            same = _same_text(raw[position], mine.title)
            reason = "sanitizing" if same else "unexplained"
            found.append(Difference(name, reason, f"{title!r} -> {mine.title!r}"))
    return found


def _entries(body: bytes, url: str, **switches: bool) -> Any:
    headers = {k.lower(): v for k, v in HEADERS.items()} | {"content-location": url}
    return feedparser.parse(io.BytesIO(body), response_headers=headers, **switches).entries


def _unsanitized(body: bytes, url: str, *, merged: bool) -> list[Any]:
    entries = _entries(body, url, sanitize_html=False, resolve_relative_uris=False)
    return _first_of_each(entries) if merged else list(entries)


def _first_of_each(entries: list[Any]) -> list[Any]:
    """The first entry of each identity, in document order."""
    return list({_identity(entry): entry for entry in reversed(entries)}.values())[::-1]


def _identity(entry: Any) -> object:
    """parse_feed's identity rule, read off feedparser's entry: guid, link, what a reader sees."""
    guid = str(dict.get(entry, "id") or "").strip()
    link = str(dict.get(entry, "link") or "").strip()
    if guid:
        return guid
    if link:
        return normalize_link(link)
    contents = [dict.get(c, "value") for c in dict.get(entry, "content") or ()]
    terms = [dict.get(t, "term") for t in dict.get(entry, "tags") or ()]
    links = dict.get(entry, "links") or ()
    files = [dict.get(f, "href") for f in links if dict.get(f, "rel") == "enclosure"]
    fields = ("title", "summary", "author")
    return repr([*(dict.get(entry, key) for key in fields), contents, terms, files])


def _same_text(entry: Any, ours: str) -> bool:
    """Whether ``ours`` is the text of feedparser's title, read independently of parse_feed."""
    detail = dict.get(entry, "title_detail") or {}
    title = str(dict.get(entry, "title") or "")
    if dict.get(detail, "type") in HTML_TYPES:
        title = _TextOf.read(title)
    return _letters(title) == _letters(ours)


def _letters(text: str) -> str:
    return "".join(strip_invisible(clean_line(text)).split())


class _TextOf(HTMLParser):
    """The text of an HTML fragment (the stdlib's parser, not nh3's), hidden elements dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    @classmethod
    def read(cls, fragment: str) -> str:
        parser = cls()
        parser.feed(fragment)
        parser.close()
        return "".join(parser.parts)

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self._skipping += tag in HIDDEN

    def handle_endtag(self, tag: str) -> None:
        self._skipping -= tag in HIDDEN and self._skipping > 0

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


@pytest.mark.network_download
def test_parse_feed_agrees_with_plain_feedparser_or_says_why(corpus_run: Run) -> None:
    differences = [difference for outcome in corpus_run.outcomes for difference in compare(outcome)]
    unexplained = [f"{d.name}: {d.detail}" for d in differences if d.reason == "unexplained"]
    assert unexplained == [], "\n".join(unexplained)
    reasons = Counter(d.reason for d in differences)
    assert set(reasons) <= set(DIFFERENCES)
    differing = {d.name for d in differences}
    assert len(differing) < 0.1 * len(corpus_run.outcomes), reasons  # agreement is the rule
