"""The story-detection scenario, run in a fresh interpreter by `_measure.run_isolated`.

A ``MemoryIndex`` is filled with ``stored`` generated entries (their
features, vectors, band keys and postings, as the store would hold them;
filling it is not measured), then ``windows`` batches of ``batch`` new
entries are detected and added, each batch in a `Window`. Figures per batch
(CPU ms per entry) and the stored sizes are written as JSON to ``out``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._measure import Usage, Window
from bench._stories_corpus import stories
from feedsvc.stories import terms
from feedsvc.stories.detect import detect
from feedsvc.stories.memory import MemoryIndex

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
