"""The story-detection benchmark of issue 13: series + related + clusters per new entry.

Three measurements, each in a fresh interpreter:

* **through the store** (`_stories_scenarios.store_scenario`): a SQLite store
  holding ``stored`` generated entries (`_stories_corpus`: the labelled set's
  items moved to other places, amounts and words, one to four outlets each, over
  30 days) is detected as ``feedsvc db upgrade`` does (the backfill, measured),
  then batches of new entries are stored (not measured) and detected
  (measured): whole-process CPU per new entry, SQLite's work included since it
  runs in the process, and the file's growth per entry (after a checkpoint);
* **in memory** (`detect_scenario`): the same over ``MemoryIndex`` (dicts
  standing for the tables), the floor of the pure decisions;
* **cold poll** (`bench._ingest_scenarios.poll_scenario`, as ``make bench
  ingest`` runs it): every entry of the ingest corpus new, with and without
  detecting their stories in the same window, median of the runs.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench._corpus import write_feeds
from bench._measure import Usage, run_isolated
from bench._report import Report, Row, Target, progress
from bench._server import feed_server


@dataclass(frozen=True, slots=True)
class Plan:
    stored: int
    batch: int
    windows: int
    feeds: int  # of the cold poll
    poll_runs: int


FULL = Plan(stored=100_000, batch=500, windows=3, feeds=200, poll_runs=3)
QUICK = Plan(stored=3_000, batch=200, windows=3, feeds=20, poll_runs=1)
_BYTES = {"band_rows": 16, "shingles": 4, "names": 4, "vector_terms": 12, "posted_terms": 16}


def run(quick: bool) -> Report:
    plan = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="feedsvc-bench-") as tmp:
        work = Path(tmp)
        progress(
            f"stories: {plan.stored:,} stored entries in SQLite, {plan.windows} x {plan.batch}"
        )
        store_usage, store_figures = _isolated(
            "store_scenario", work, timeout=4 * 3600, db=str(work / "stories.db"), **_sizes(plan)
        )
        progress(f"stories: store figures {json.dumps(store_figures)}")
        progress(f"stories: the same in memory ({plan.stored:,} entries)")
        memory_usage, memory_figures = _isolated("detect_scenario", work, **_sizes(plan))
        cold_off, cold_on = _cold_polls(plan, work)
    per_entry = store_figures["per_entry_ms"]
    growth = store_figures["batch_bytes"]
    memory = memory_figures["per_entry_ms"]
    rows = [
        Row(f"store: detect {plan.batch} new entries (best batch)", store_usage, plan.windows),
        Row(f"memory: detect + add {plan.batch} new entries", memory_usage, plan.windows),
        Row.of_runs("cold poll, detection off", cold_off),
        Row.of_runs("cold poll, detection on", cold_on),
    ]
    off, on = rows[2].usage.cpu_s, rows[3].usage.cpu_s
    targets = [
        Target(
            "CPU per new entry through the store (median batch)",
            statistics.median(per_entry),
            2.0,
            "ms",
            _spread(per_entry, "ms") + f" over {plan.windows} batches",
        ),
        Target(
            "cold poll with detection / without (CPU, medians)",
            on / off,
            1.3,
            "x",
            f"{on:.2f} s / {off:.2f} s",
        ),
    ]
    notes = [
        f"store growth per new entry: {_spread(growth, 'B')} (file and WAL, checkpointed); "
        f"backfill of {plan.stored:,} entries: {store_figures['backfill_ms']:.2f} ms CPU and "
        f"{store_figures['backfill_wall_s'] / plan.stored * 1000:.2f} ms wall per entry, "
        f"{store_figures['backfill_bytes']:,.0f} B per entry.",
        f"in memory (MemoryIndex, the pure decisions' floor): {_spread(memory, 'ms')} per entry.",
        "cold poll: the ingest corpus "
        f"({plan.feeds} feeds x 100 entries), as bench.ingest polls it; 'on' also detects "
        "every stored entry's story in the same window, as the publisher does after a poll.",
    ]
    return Report(
        f"stories: detection against {plan.stored:,} stored entries", rows, targets, notes
    )


def _sizes(plan: Plan) -> dict[str, int]:
    return {"stored": plan.stored, "batch": plan.batch, "windows": plan.windows}


def _isolated(
    function: str, work: Path, *, timeout: float = 3600, **params: object
) -> tuple[Usage, dict[str, list[float]]]:
    out = work / f"{function}.json"
    usage = run_isolated(
        f"bench._stories_scenarios:{function}", {**params, "out": str(out)}, timeout=timeout
    )
    return usage, json.loads(out.read_text())


def _cold_polls(plan: Plan, work: Path) -> tuple[list[Usage], list[Usage]]:
    progress(f"stories: cold poll of {plan.feeds} feeds, detection off and on")
    names = write_feeds(work / "feeds", feeds=plan.feeds, entries=100)
    off: list[Usage] = []
    on: list[Usage] = []
    with feed_server(work / "feeds") as base_url:
        for n in range(plan.poll_runs):
            for detect, usages in ((False, off), (True, on)):
                db = work / f"cold-{n}-{detect}.db"
                params = {
                    "work": str(work),
                    "base_url": base_url,
                    "names": names,
                    "entries": 100,
                    "route": "feeds",
                    "db": str(db),
                    "expect": "updated",
                    "detect": detect,
                }
                usages.append(
                    run_isolated("bench._ingest_scenarios:poll_scenario", params, timeout=3600)
                )
                progress(f"stories: cold poll {n + 1}, detect={detect}: {usages[-1].cpu_s:.2f} s")
                db.unlink()
    return off, on


def _spread(values: list[float], unit: str) -> str:
    return (
        f"min {min(values):,.2f} / median {statistics.median(values):,.2f} / "
        f"max {max(values):,.2f} {unit}"
    )
