"""The story-detection scenarios, run in a fresh interpreter by `_measure.run_isolated`.

``store_scenario`` runs detection through the real store (SQLite); ``detect_scenario``
below runs it over ``MemoryIndex``, the floor of the pure decisions.

A ``MemoryIndex`` is filled with ``stored`` generated entries (their
features, vectors, band keys and postings, as the store would hold them;
filling it is not measured), then ``windows`` batches of ``batch`` new
entries are detected and added, each batch in a `Window`. Figures per batch
(CPU ms per entry) and the stored sizes are written as JSON to ``out``.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._measure import BenchError, Usage, Window
from bench._stories_corpus import stories
from feedsvc.model import ParsedEntry, ParsedFeed, Source
from feedsvc.store import Store
from feedsvc.stories import terms
from feedsvc.stories.detect import detect
from feedsvc.stories.memory import MemoryIndex
from feedsvc.stories.model import StoryText

START = datetime(2025, 5, 1, tzinfo=UTC)
DAYS = 30


def detect_scenario(params: dict[str, Any]) -> Usage:
    stored, batch, windows = params["stored"], params["batch"], params["windows"]
    total = stored + batch * windows
    generated = list(stories(total, start=START, days=DAYS * total // stored))
    index = MemoryIndex()
    now = START + timedelta(days=400)
    for story in generated[:stored]:
        index.add(detect(story, index, now=now))
    per_entry_ms, usages = [], []
    for n in range(windows):
        new = generated[stored + n * batch : stored + (n + 1) * batch]
        with Window() as window:
            for story in new:
                index.add(detect(story, index, now=now))
        usages.append(window.usage)
        per_entry_ms.append(window.usage.cpu_s * 1000 / batch)
    figures = {"per_entry_ms": per_entry_ms, "sizes": _sizes(index)}
    Path(params["out"]).write_text(json.dumps(figures))
    return min(usages, key=lambda u: u.cpu_s)


def _sizes(index: MemoryIndex) -> dict[str, float]:
    """Mean stored values per entry: how many of each, and their bytes as stored."""
    entries = index._entries.values()  # noqa: SLF001 - the bench reads the reference tables
    count = len(entries)
    bands = sum(len(s.features.band_keys) + len(s.features.exact_keys) for s in entries)
    bands /= count
    shingles = sum(len(s.features.shingles) for s in entries) / count
    names = sum(len(s.features.names) for s in entries) / count
    vector = sum(len(s.vector.weights) for s in entries) / count
    return {
        "entries": count,
        "band_rows": bands,
        "shingles": shingles,
        "names": names,
        "vector_terms": vector,
        "posted_terms": float(terms.POSTED_TERMS),
        "term_counts": len(index._frequencies),  # noqa: SLF001
    }


def store_scenario(params: dict[str, Any]) -> Usage:
    """Detection through the real store (SQLite): ``stored`` entries stored, then detected
    as ``feedsvc db upgrade`` does (the backfill, measured), then ``windows`` batches of
    ``batch`` new entries stored (not measured) and detected (measured). Writes the CPU
    per entry of the backfill and of each batch, and the file's growth, to ``out``."""
    stored, batch, windows = params["stored"], params["batch"], params["windows"]
    total = stored + batch * windows
    database = Path(params["db"])
    store = Store.open(f"sqlite:///{database}")
    generated = list(stories(total, start=START, days=DAYS * total // stored))
    sources = sorted({story.source_id for story in generated})
    store.sources.sync([(s, f"https://{s}.example.vn/rss") for s in sources], START)
    now = START + timedelta(days=400)
    try:
        _store_entries(store, generated[:stored], now)
        before = _size(database)
        with Window() as backfill:
            store.stories.detect_pending(now)
        grown = _size(database) - before
        per_entry_ms, usages, growth = [], [], []
        for n in range(windows):
            new = generated[stored + n * batch : stored + (n + 1) * batch]
            _store_entries(store, new, now)
            size = _size(database)
            with Window() as window:
                store.stories.detect_pending(now)
            growth.append((_size(database) - size) / batch)
            usages.append(window.usage)
            per_entry_ms.append(window.usage.cpu_s * 1000 / batch)
        if store.stories.pending(now):
            raise BenchError("entries left undetected")
    finally:
        store.close()
    figures = {
        "per_entry_ms": per_entry_ms,
        "backfill_ms": backfill.usage.cpu_s * 1000 / stored,
        "backfill_wall_s": backfill.usage.wall_s,
        "backfill_bytes": grown / stored,
        "batch_bytes": growth,
    }
    Path(params["out"]).write_text(json.dumps(figures))
    return min(usages, key=lambda u: u.cpu_s)


def _store_entries(store: Store, new: list[StoryText], seen: datetime) -> None:
    """Store ``new`` as polls would: one ``apply`` per source per 1,000 entries, first seen
    ``seen`` (detection takes news first seen in the last 30 days)."""
    for start in range(0, len(new), 1000):
        by_source: dict[str, list[ParsedEntry]] = {}
        for story in new[start : start + 1000]:
            by_source.setdefault(story.source_id, []).append(
                ParsedEntry(
                    identity=story.link or str(story.entry_id),
                    title=story.title,
                    link=story.link,
                    summary=story.summary,
                    published=story.published,
                    content_hash=str(story.entry_id),
                )
            )
        for source_id, parsed in by_source.items():
            source = Source(source_id, "", "", first_polled_at=START)
            store.entries.apply(source, ParsedFeed(None, None, tuple(parsed)), {}, seen)


def _size(database: Path) -> int:
    """The database's bytes, after a checkpoint (the write-ahead log folded in)."""
    with closing(sqlite3.connect(database)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int(pages * size)
