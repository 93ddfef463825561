"""The search benchmark of issue 12: query latency at 1,000,000 entries, index size, and
what indexing adds to a poll.

SQLite holds 1,000,000 generated Vietnamese entries (`_stories_corpus`, stored
through ``store.entries.apply`` and filed under five categories; built once and
kept in /tmp/feedsvc-bench-search, keyed by the migrations and the folding
code), PostgreSQL 200,000. Each is asked 200 readers' queries (1-3 words, the
most common words of the corpus included, toned or not, phrases, prefixes, a
tenth within a category), warm, three times: per-query wall latency through the
store API and through HTTP (``feedsvc serve``, one keep-alive client, the
/search page; then the search feed uncached and cached). Latency is wall time
per query on a shared machine; CPU is the whole process tree's, as elsewhere.

Indexing: one cold poll's worth of new entries (40 feeds x 50 items of `_prose`)
parsed and stored in a fresh SQLite file with and without the index, three times
each; the figure is the extra CPU over parse + store without it. A real cold
poll also fetches, files and publishes, so the share of the whole poll is lower.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench._measure import run_isolated
from bench._report import Report, Row, Target, progress

FULL = {"sqlite": 1_000_000, "postgresql": 200_000, "sources": 40, "per_source": 50}
QUICK = {"sqlite": 20_000, "postgresql": 5_000, "sources": 10, "per_source": 20}
PG = os.environ.get(
    "FEEDSVC_BENCH_PG",
    os.environ.get("FEEDSVC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"),
)


def run(quick: bool) -> Report:
    from bench._search_scenarios import CACHE, fingerprint

    plan = QUICK if quick else FULL
    mark = fingerprint()
    CACHE.mkdir(exist_ok=True)
    rows, targets, notes = [], [], []
    with tempfile.TemporaryDirectory(prefix="feedsvc-bench-") as tmp:
        work = Path(tmp)
        backends = {
            "sqlite": f"sqlite:///{CACHE}/search-{plan['sqlite']}-{mark}.db",
            "postgresql": _pg_schema(f"bench_search_{plan['postgresql']}_{mark}"),
        }
        for backend, url in backends.items():
            count = plan[backend]
            progress(f"search: {backend}, {count:,} entries (built once, then kept)")
            out = work / f"{backend}.json"
            usage = run_isolated(
                "bench._search_scenarios:latency_scenario",
                {"url": url, "entries": count, "out": str(out), "work": str(work)},
                timeout=4 * 3600,
            )
            figures = json.loads(out.read_text())
            label = f"{backend} {count:,}"
            rows.append(Row(f"{label}: 200 queries, store API", usage, 3))
            store_p95 = [_pct(run, 95) for run in figures["store_ms"]]
            http_p95 = [_pct(run, 95) for run in figures["http_page_ms"]]
            targets.append(
                Target(
                    f"{label}: p95 store API",
                    statistics.median(store_p95),
                    50,
                    "ms",
                    _spread(figures["store_ms"]),
                )
            )
            targets.append(
                Target(
                    f"{label}: p95 HTTP /search",
                    statistics.median(http_p95),
                    50,
                    "ms",
                    _spread(figures["http_page_ms"]),
                )
            )
            notes.append(_notes(label, figures))
        progress("search: indexing cost of a cold poll's new entries")
        out = work / "indexing.json"
        usage = run_isolated(
            "bench._search_scenarios:indexing_scenario",
            {
                "sources": plan["sources"],
                "per_source": plan["per_source"],
                "repeats": 3,
                "out": str(out),
                "work": str(work),
            },
            timeout=3600,
        )
        runs = json.loads(out.read_text())
        with_index, without = statistics.median(runs["with"]), statistics.median(runs["without"])
        entries = plan["sources"] * plan["per_source"]
        rows.append(Row(f"parse + store {entries} new entries (median)", usage, 3))
        targets.append(
            Target(
                "indexing adds to parse + store CPU",
                100 * (with_index - without) / without,
                20,
                "%",
                f"with {_mmm(runs['with'], 's')} / without {_mmm(runs['without'], 's')} CPU",
            )
        )
    return Report("search: tone-blind search at scale", rows, targets, notes)


def _pg_schema(schema: str) -> str:
    url = sa.make_url(PG).set(drivername="postgresql+psycopg")
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
    engine.dispose()
    with_path = sa.make_url(PG).update_query_dict({"options": f"-csearch_path={schema}"})
    return with_path.render_as_string(hide_password=False)


def _pct(values: list[float], p: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _mmm(values: list[float], unit: str) -> str:
    return f"{min(values):.3f}/{statistics.median(values):.3f}/{max(values):.3f} {unit}"


def _spread(runs: list[list[float]]) -> str:
    p50 = [_pct(r, 50) for r in runs]
    p95 = [_pct(r, 95) for r in runs]
    return f"p50 {_mmm(p50, 'ms')}, p95 {_mmm(p95, 'ms')} (min/median/max of {len(runs)} runs)"


def _notes(label: str, figures: dict[str, Any]) -> str:
    hits = figures["hits"]
    uncached, cached = figures["http_feed_uncached_ms"], figures["http_feed_cached_ms"]
    return (
        f"{label}: index {figures['index_bytes'] / 2**20:,.0f} MiB "
        f"({figures['index_bytes'] / figures['entries']:,.0f} B/entry); "
        f"store API {_spread(figures['store_ms'])}, CPU {_mmm(figures['store_cpu_s'], 's')} "
        f"per 200 queries; HTTP /search {_spread(figures['http_page_ms'])}; "
        f"search feed uncached p50/p95 {_pct(uncached, 50):.1f}/{_pct(uncached, 95):.1f} ms, "
        f"cached {_pct(cached, 50):.1f}/{_pct(cached, 95):.1f} ms; "
        f"{sum(1 for h in hits if h == 20)} of 200 queries fill 20 results, "
        f"{sum(1 for h in hits if h == 0)} find nothing"
    )
