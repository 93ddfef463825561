"""The story-detection benchmark of issue 13: series + related + clusters per new entry.

A fresh interpreter (`_stories_scenarios`) fills a ``MemoryIndex`` with
``stored`` generated entries (`_stories_corpus`: the labelled set's items
moved to other places, amounts and words, one to four outlets each, over 30
days), holding what the store would hold: band keys, shingle and name hashes,
term vectors, postings and term counts. Then batches of new entries are
detected and added, each batch in a `Window`: whole-process CPU, divided by
the batch. The dict lookups stand for the store's indexed SELECTs; the
database's own CPU for them is not in the figure (see the notes).
"""

from __future__ import annotations

import json
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench._measure import run_isolated
from bench._report import Report, Row, Target, progress


@dataclass(frozen=True, slots=True)
class Plan:
    stored: int
    batch: int
    windows: int


FULL = Plan(stored=100_000, batch=500, windows=5)
QUICK = Plan(stored=5_000, batch=200, windows=2)
_BYTES = {"band_rows": 16, "shingles": 4, "names": 4, "vector_terms": 12, "posted_terms": 16}


def run(quick: bool) -> Report:
    plan = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="feedsvc-bench-") as tmp:
        out = Path(tmp) / "stories.json"
        progress(f"stories: {plan.stored:,} stored entries, {plan.windows} x {plan.batch} new")
        usage = run_isolated(
            "bench._stories_scenarios:detect_scenario",
            {"stored": plan.stored, "batch": plan.batch, "windows": plan.windows, "out": str(out)},
            timeout=3600,
        )
        figures = json.loads(out.read_text())
    per_entry = figures["per_entry_ms"]
    sizes = figures["sizes"]
    stored_bytes = sum(sizes[name] * size for name, size in _BYTES.items())
    title = f"stories: detection against {plan.stored:,} stored entries"
    rows = [Row(f"detect + add, {plan.batch} new entries (best batch)", usage, plan.windows)]
    targets = [
        Target(
            "CPU per new entry (median batch)",
            statistics.median(per_entry),
            2.0,
            "ms",
            f"min {min(per_entry):.2f} / median {statistics.median(per_entry):.2f} / "
            f"max {max(per_entry):.2f} ms over {plan.windows} batches",
        )
    ]
    notes = [
        "stored per entry (means): "
        + ", ".join(f"{name} {sizes[name]:.1f}" for name in _BYTES)
        + f"; about {stored_bytes:,.0f} bytes of values per entry (band rows as key + entry id, "
        "shingles and names as 32-bit hashes, vector terms as 63-bit id + float32, postings "
        "as term + entry id), before PostgreSQL's per-row (~28 B) and index (~16-24 B per "
        f"entry) overhead; {sizes['term_counts']:,} distinct term counts in all.",
        "the database version adds, per new entry, the SELECTs the dicts stand for: band "
        "keys IN (...) on an index (band_key, published_at), the term counts, the postings "
        "of 12 terms (latest 100 each), the source's recent series parts, and one transaction "
        "writing ~65 band rows, 16 postings, ~100 term-count upserts and the entry's row.",
    ]
    return Report(title, rows, targets, notes)
