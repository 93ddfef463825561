"""feedparser's own test feeds (about 2,242, many deliberately broken) through parse_feed.

The only acceptable outcomes are a ParsedFeed or a ParseError: anything else
would stop a poll on one hostile body. The sdist is downloaded once and kept in
pytest's cache directory (``.pytest_cache``, already git-ignored by pytest).
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from feedsvc.errors import ParseError
from feedsvc.ingest.parse import parse_feed

VERSION = "6.0.14"
ARCHIVE = f"feedparser-{VERSION}.tar.gz"
SUFFIXES = (".xml", ".rdf", ".rss", ".atom")
NOW = datetime(2026, 11, 28, tzinfo=UTC)
PEAK_LIMIT = 100 * 1024 * 1024  # Python heap; the largest test feed is a few KB


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
        pytest.skip(f"pip download produced no {ARCHIVE} in {directory}")
    return archive


def _download(directory: Path) -> None:
    command = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps"]
    command += ["--quiet", f"feedparser=={VERSION}", "-d", str(directory)]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", None) or str(exc)
        last_line = (detail.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"cannot download the feedparser {VERSION} sdist: {last_line}")


def _test_feeds(archive: Path) -> Iterator[tuple[str, bytes]]:
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = member.name.split("/")
            if member.isfile() and "tests" in parts[1:2] and member.name.endswith(SUFFIXES):
                stream = tar.extractfile(member)
                if stream is not None:
                    yield member.name, stream.read()


@pytest.mark.network_download
def test_every_feedparser_test_feed_parses_or_is_refused(feedparser_sdist: Path) -> None:
    feeds = list(_test_feeds(feedparser_sdist))
    assert len(feeds) > 2000
    parsed, refused, crashed = 0, 0, []
    tracemalloc.start()
    try:
        for name, body in feeds:
            try:
                parse_feed(
                    body,
                    url=f"https://feeds.example.com/{name}",
                    headers={"Content-Type": "application/xml"},
                    timezone="Asia/Ho_Chi_Minh",
                    now=NOW,
                )
                parsed += 1
            except ParseError:
                refused += 1
            except Exception as exc:  # collect them all, then fail once
                crashed.append(f"{name}: {type(exc).__name__}: {exc}")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert crashed == [], "\n".join(crashed)
    assert parsed > 0.95 * len(feeds), f"only {parsed} of {len(feeds)} parsed"
    assert peak < PEAK_LIMIT, f"peak {peak / 2**20:.0f} MiB over {len(feeds)} feeds"
