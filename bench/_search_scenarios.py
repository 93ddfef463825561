"""The search scenarios, run in a fresh interpreter by `_measure.run_isolated`.

``latency_scenario`` opens (or first builds, once, and keeps) a store of
``entries`` generated Vietnamese entries (`_stories_corpus`), stored through the
real ``store.entries.apply`` a batch at a time and filed under five categories,
then times 200 readers' queries (`queries`) through ``store.search.search`` and
through HTTP (``feedsvc serve`` in a child process: the page, then the search
feed twice, uncached and cached). ``indexing_scenario`` measures what indexing
adds to storing one poll's new entries. Figures go to ``out`` as JSON.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from bench import _prose
from bench._measure import Usage, Window
from bench._stories_corpus import stories
from feedsvc import search
from feedsvc.ingest.parse import parse_feed
from feedsvc.model import ParsedEntry, ParsedFeed
from feedsvc.search.fold import toned_words
from feedsvc.store import Store, migrate
from feedsvc.store import entries as entries_module

START = datetime(2025, 1, 1, tzinfo=UTC)
DAYS_PER_10K = 3  # about 3,300 entries a day: a large newsroom's aggregate
CATEGORIES = ("xa-hoi", "kinh-te", "thoi-su", "the-thao", "giao-duc")
CACHE = Path("/tmp/feedsvc-bench-search")
BATCH = 5000
REPEATS = 3


def fingerprint() -> str:
    """Changes when what the index holds could: the migrations and the folding."""
    src = Path(search.__file__).parents[1]
    files = ["search/fold.py", "_text.py", "store/search.py", *_migrations(src)]
    parts = b"".join((src / name).read_bytes() for name in files)
    return hashlib.sha256(migrate.head().encode() + parts).hexdigest()[:10]


def _migrations(src: Path) -> list[str]:
    folder = src / "store" / "migrations" / "versions"
    return sorted(str(path.relative_to(src)) for path in folder.glob("0*.py"))


def latency_scenario(params: dict[str, Any]) -> Usage:
    url, count = params["url"], params["entries"]
    store = Store.open(url)
    if store.entries.count() != count:
        _fill(store, count)
    queries = make_queries(200, seed=7)
    figures: dict[str, Any] = {"entries": store.entries.count(), "index_bytes": store.search.size()}
    _run_queries(store, queries)  # warm: the index pages in memory, as in a running service
    store_runs, usages = [], []
    for _ in range(REPEATS):
        with Window() as window:
            store_runs.append(_run_queries(store, queries))
        usages.append(window.usage)
    figures["store_ms"] = store_runs
    figures["store_cpu_s"] = [u.cpu_s for u in usages]
    figures["hits"] = _hit_counts(store, queries)
    store.close()
    Path(params["out"]).write_text(json.dumps(figures))  # kept should HTTP fail
    figures |= _over_http(url, queries, Path(params["work"]))
    Path(params["out"]).write_text(json.dumps(figures))
    return sorted(usages, key=lambda u: u.cpu_s)[len(usages) // 2]


def _fill(store: Store, count: int) -> None:
    """Store ``count`` generated entries as polls would: a batch at a time, per source."""
    days = max(1, DAYS_PER_10K * count // 10_000)
    generated = stories(count, start=START, days=days)
    sources: dict[str, Any] = {}
    for chunk in _chunks(generated, BATCH):
        names = sorted({s.source_id for s in chunk} - set(sources))
        if names:
            store.sources.sync(
                [(n, f"https://{n}.example.vn/rss") for n in [*sources, *names]], START
            )
            sources = {s.id: s for s in store.sources.list()}
        seen = max(s.published for s in chunk if s.published)
        filed: dict[int, list[str]] = {}
        for name in sorted({s.source_id for s in chunk}):
            items = tuple(_parsed(s) for s in chunk if s.source_id == name)
            outcome = store.entries.apply(
                sources[name], ParsedFeed(name, None, items), {"status": "ok"}, seen
            )
            filed |= {i: [CATEGORIES[i % len(CATEGORIES)]] for i in outcome.new_ids}
        store.categories.assign(filed)


def _parsed(story: Any) -> ParsedEntry:
    return ParsedEntry(
        identity=story.link,
        title=story.title,
        link=story.link,
        summary=story.summary,
        published=story.published,
        content_hash=str(story.entry_id),
    )


def _chunks(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def make_queries(count: int, seed: int) -> list[tuple[str, str | None]]:
    """Queries as readers type them: 1-3 words, the very common ones included, toned or
    not, some phrases and prefixes, a few within a category. Deterministic."""
    rng = random.Random(seed)
    sample = list(stories(5000, start=START, days=2))
    words = Counter(w for s in sample for w in set(toned_words(s.title + " " + s.summary)))
    common = [w for w, _ in words.most_common(40)]  # "tỉnh" is in about half the entries
    titles = [toned_words(s.title) for s in sample]
    queries: list[tuple[str, str | None]] = []
    while len(queries) < count:
        kind = rng.random()
        title = rng.choice([t for t in titles if len(t) >= 4])
        at = rng.randrange(len(title) - 3)
        if kind < 0.3:
            text = rng.choice(common)
        elif kind < 0.6:
            text = " ".join(title[at : at + 2])
        elif kind < 0.75:
            text = " ".join(title[at : at + 3])
        elif kind < 0.85:
            text = '"' + " ".join(title[at : at + 2]) + '"'
        else:
            word = rng.choice([w for w in common if len(w) >= 3])
            text = search.fold(word)[:3] + "*"
        if rng.random() < 0.5:
            text = search.fold(text)  # typed without tones
        category = rng.choice(CATEGORIES) if rng.random() < 0.1 else None
        queries.append((text, category))
    return queries


def _run_queries(store: Store, queries: list[tuple[str, str | None]]) -> list[float]:
    timings = []
    for text, category in queries:
        start = time.perf_counter()
        store.search.search(search.parse(text), category, 20)
        timings.append((time.perf_counter() - start) * 1000)
    return timings


def _hit_counts(store: Store, queries: list[tuple[str, str | None]]) -> list[int]:
    return [len(store.search.search(search.parse(t), c, 20)) for t, c in queries]


CONFIG = """\
site:
  title: "Bench"
  base_url: "http://127.0.0.1:{port}"
storage:
  url: "{url}"
http:
  port: {port}
sources: []
categories:
{categories}
"""


def _over_http(url: str, queries: list[tuple[str, str | None]], work: Path) -> dict[str, Any]:
    """The page and the search feed through ``feedsvc serve``, one keep-alive client."""
    port = _free_port()
    config = work / "search.yaml"
    categories = "\n".join(f"  - id: {c}\n    title: {c}" for c in CATEGORIES)
    config.write_text(CONFIG.format(port=port, url=url, categories=categories), encoding="utf-8")
    # The app under uvicorn as `feedsvc serve` runs it, without serve's start-up publish
    # (which would first file and classify every generated entry: not what is measured).
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVE, str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        conn = _connect(port)
        paths = [f"/search?q={quote(t)}" + (f"&category={c}" if c else "") for t, c in queries]
        feeds = [p.replace("/search?", "/feeds/search.rss?", 1) for p in paths]
        _get_all(conn, paths)  # warm
        page_runs, page_cpu = [], []
        for _ in range(REPEATS):
            with Window() as window:
                page_runs.append(_get_all(conn, paths))
            page_cpu.append(window.usage.cpu_s)
        with Window() as window:
            uncached = _get_all(conn, feeds)
        cached = _get_all(conn, feeds)
        return {
            "http_page_ms": page_runs,
            "http_page_cpu_s": page_cpu,
            "http_feed_uncached_ms": uncached,
            "http_feed_cached_ms": cached,
            "http_feed_cpu_s": window.usage.cpu_s,
        }
    finally:
        server.terminate()
        server.wait(30)


_SERVE = """
import sys
from feedsvc import config as config_module
from feedsvc.schedule import http_server
from feedsvc.store import Store
config = config_module.load(sys.argv[1])
http_server(config, Store.open(config.database_url), embedded=False).run()
"""


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _connect(port: int) -> http.client.HTTPConnection:
    deadline = time.monotonic() + 300
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            return conn
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _get_all(conn: http.client.HTTPConnection, paths: list[str]) -> list[float]:
    timings = []
    for path in paths:
        start = time.perf_counter()
        conn.request("GET", path, headers={"Accept-Encoding": "gzip"})
        response = conn.getresponse()
        response.read()
        timings.append((time.perf_counter() - start) * 1000)
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status}")
    return timings


# --- what indexing adds to storing a poll's new entries --------------------------------


def indexing_scenario(params: dict[str, Any]) -> Usage:
    """Parse and store one cold poll's feeds (``sources`` x ``per_source`` new entries)
    into a fresh SQLite file, with the index and without it; CPU of each, ``repeats`` times."""
    sources, per_source, work = params["sources"], params["per_source"], Path(params["work"])
    feeds = [
        (f"s{n:02d}", _prose.rss(f"s{n:02d}", f"Mục {n}", entries=per_source, newest=START))
        for n in range(sources)
    ]
    real_write = entries_module.search_index.write
    runs: dict[str, list[float]] = {"with": [], "without": []}
    usages = []
    for repeat in range(params["repeats"]):
        for mode in ("without", "with"):
            write: Callable[..., None] = real_write if mode == "with" else _no_index
            entries_module.search_index.write = write  # type: ignore[assignment]
            db = work / f"poll-{mode}-{repeat}.db"
            store = Store.open(f"sqlite:///{db}")
            store.sources.sync(
                [(name, f"https://{name}.example.vn/rss") for name, _ in feeds], START
            )
            by_id = {s.id: s for s in store.sources.list()}
            with Window() as window:
                for name, body in feeds:
                    parsed = parse_feed(
                        body, url=by_id[name].url, headers={}, timezone="UTC", now=START
                    )
                    store.entries.apply(by_id[name], parsed, {"status": "ok"}, START)
            runs[mode].append(window.usage.cpu_s)
            usages.append(window.usage)
            store.close()
    entries_module.search_index.write = real_write
    Path(params["out"]).write_text(json.dumps(runs))
    return sorted(usages, key=lambda u: u.cpu_s)[len(usages) // 2]


def _no_index(conn: sa.Connection, docs: Any) -> None:
    list(docs)  # the docs are still built by the caller; only the index work is left out
