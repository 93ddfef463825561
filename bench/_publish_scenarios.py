"""The publish scenarios, each run in a fresh interpreter by `_measure.run_isolated`.

Each takes the JSON parameters `bench.publish` sends (for rendering and
regenerating, ``config``: a config.yaml whose database is the newsroom, or this
run's copy of it; for serving, see `serve_scenario`), does its setup, measures
only the work itself inside a `Window`, checks the outcome, and returns the
`Usage`. Figures a `Usage` has no room for (requests per second, latencies)
are written as JSON to ``out``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import _load
from bench._measure import BenchError, Usage, Window
from bench._newsroom import EDITED, edit_one, write_config
from feedsvc import config as config_module
from feedsvc.config import Config
from feedsvc.model import Entry, utcnow
from feedsvc.publish.feeds import FeedInfo, Format, render_all
from feedsvc.publish.regenerate import Publisher
from feedsvc.store import Store

# A feed reader's request headers: readers ask for gzip (If-None-Match is added per load).
READER_HEADERS = {"Accept-Encoding": "gzip", "User-Agent": "newsboat/2.30 (bench)"}
_SERVER_START_S = 60


def render_scenario(params: dict[str, Any]) -> Usage:
    """``render_all`` of every category in every format, from entries read beforehand."""
    config = config_module.load(params["config"])
    store = Store.open(config.database_url)
    try:
        feeds = _feeds(config, store)
    finally:
        store.close()
    formats: tuple[Format, ...] = tuple(config.feeds.formats)
    now = utcnow()
    render_all(formats, *feeds[0], now)  # first use of lxml and feedgen: once per process
    with Window() as window:
        documents = [render_all(formats, info, entries, now) for info, entries in feeds]
    _check_documents(documents, feeds, params["entries"])
    return window.usage


def warm_render_scenario(params: dict[str, Any]) -> Usage:
    """The same documents through the fragment cache (``Publisher.render_feed``), warmed
    by a regenerate of every category, after one entry was edited as a poll edits it.

    Entries are read beforehand, as in `render_scenario`; the window holds reading
    the cached fragments, rendering the edited entry, caching it and assembling
    every document. Afterwards each document must be the bytes ``render_all`` gives.
    """
    config = config_module.load(params["config"])
    store = Store.open(config.database_url)
    try:
        publisher = Publisher(config, store)
        publisher.regenerate([category.id for category in config.categories], utcnow())
        edit_one(config, store, entries=params["entries"])
        feeds = _feeds(config, store)
        now = utcnow()
        with Window() as window:
            documents = [publisher.render_feed(info, entries, now) for info, entries in feeds]
    finally:
        store.close()
    _check_documents(documents, feeds, params["entries"])
    formats = config.feeds.formats
    if documents != [render_all(formats, info, entries, now) for info, entries in feeds]:
        raise BenchError("documents from the fragment cache differ from a full render")
    if EDITED.encode() not in documents[0]["rss"]:
        raise BenchError("the edited entry is not in its category's feed")
    return window.usage


def _feeds(config: Config, store: Store) -> list[tuple[FeedInfo, list[Entry]]]:
    """Each category's feed and its newest entries, as the documents show them."""
    return [
        (
            FeedInfo.for_category(config.site, category, config.feeds.websub_hub),
            store.categories.newest(category.id, config.feeds.max_items),
        )
        for category in config.categories
    ]


def _check_documents(
    documents: list[dict[Format, bytes]], feeds: list[tuple[FeedInfo, list[Entry]]], entries: int
) -> None:
    for (info, shown), rendered in zip(feeds, documents, strict=True):
        counts = {
            "rss": rendered["rss"].count(b"<item>"),
            "atom": rendered["atom"].count(b"<entry>"),
            "json": len(json.loads(rendered["json"])["items"]),
        }
        if len(shown) != entries or set(counts.values()) != {entries}:
            raise BenchError(f"{info.id}: {len(shown)} entries read, rendered {counts}")


def regenerate_scenario(params: dict[str, Any]) -> Usage:
    """``Publisher.regenerate`` of every category: read, dedupe, render, gzip, store.

    With ``warm``, every category was regenerated once before and then one entry
    edited (the publish after a poll); otherwise the database has no document and
    no fragment yet.
    """
    config = config_module.load(params["config"])
    store = Store.open(config.database_url)
    try:
        publisher = Publisher(config, store)
        categories = [category.id for category in config.categories]
        if params.get("warm"):
            publisher.regenerate(categories, utcnow())
            edit_one(config, store, entries=params["entries"])
        else:
            first = config.categories[0]
            info = FeedInfo.for_category(config.site, first, config.feeds.websub_hub)
            warm = store.categories.newest(first.id, config.feeds.max_items)
            render_all(config.feeds.formats, info, warm, utcnow())  # as in render_scenario
        with Window() as window:
            changed = publisher.regenerate(categories, utcnow())
    finally:
        store.close()
    expected = len(config.feeds.formats) * (1 if params.get("warm") else len(categories))
    if len(changed) != expected:
        raise BenchError(f"expected {expected} documents to change, got {len(changed)}: {changed}")
    return window.usage


def serve_scenario(params: dict[str, Any]) -> Usage:
    """``feedsvc serve`` on the newsroom, loaded by wrk on each of ``loads`` in turn.

    One server takes every load, one after another, so they compare the same
    warm process. It is a child of this process, so each load's window counts
    its CPU; wrk is started and reaped inside the window, so its CPU is not (a
    process that has exited is no longer in the tree a window reads). Each
    load's `Usage` and wrk figures go to ``out``, in ``loads`` order; the `Usage`
    returned spans them all.

    Parameters: ``db`` (the newsroom copy to serve), ``categories``, ``loads``
    (``{"path", "conditional"}`` each: conditional sends the path's current ETag
    in If-None-Match), ``seconds`` of load each, after ``warm_seconds`` of
    unmeasured load on every path, ``work`` and ``out``.
    """
    work = Path(params["work"])
    port = _free_port()
    config = work / f"serve-{port}.yaml"
    write_config(config, Path(params["db"]), categories=params["categories"], http_port=port)
    base = f"http://127.0.0.1:{port}"
    script = work / f"wrk-{port}.lua"
    server = _start_server(config, work / f"serve-{port}.log", f"{base}/healthz")
    measured = []
    try:
        targets = [
            (f"{base}{load['path']}", *_headers(f"{base}{load['path']}", load["conditional"]))
            for load in params["loads"]
        ]
        for url, headers, _ in targets if params["warm_seconds"] else []:
            _load.wrk(url, headers, seconds=params["warm_seconds"], script=script)
        with Window() as whole:
            for url, headers, probe in targets:
                with Window() as window:
                    load = _load.wrk(url, headers, seconds=params["seconds"], script=script)
                measured.append((window.usage, load, probe))
    finally:
        server.terminate()
        server.wait(timeout=30)
    for _, load, probe in measured:
        _check_load(load, probe)
    figures = [{"usage": asdict(usage), "load": asdict(load)} for usage, load, _ in measured]
    Path(params["out"]).write_text(json.dumps(figures))
    return whole.usage


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(config: Path, log: Path, health: str) -> subprocess.Popen[bytes]:
    """``feedsvc serve`` on its own core(s), up and answering ``health``."""
    command = [*_load.cores()[0], sys.executable, "-m", "feedsvc", "serve", "--config", str(config)]
    with log.open("wb") as output:
        server = subprocess.Popen(command, cwd=config.parent, stdout=output, stderr=output)
    deadline = time.monotonic() + _SERVER_START_S
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(health, timeout=1):
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    server.wait()
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-10:])
    raise BenchError(f"feedsvc serve did not come up (exit {server.returncode}):\n{tail}")


def _headers(url: str, conditional: bool) -> tuple[dict[str, str], tuple[int, int]]:
    """The load's headers (with the current ETag when ``conditional``) and one probe's
    ``(status, body bytes)`` with them: what every answer under load should be like."""
    headers = dict(READER_HEADERS)
    if conditional:
        headers["If-None-Match"] = _fetch(url, headers)[2]
    status, length, _ = _fetch(url, headers)
    return headers, (status, length)


def _fetch(url: str, headers: dict[str, str]) -> tuple[int, int, str]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, len(response.read()), response.headers.get("ETag", "")
    except urllib.error.HTTPError as error:  # urllib raises on a 304
        return error.code, len(error.read()), error.headers.get("ETag", "")


def _check_load(load: _load.Load, probe: tuple[int, int]) -> None:
    """No failed request, and on average each answer was the probe's (headers add < 1 KB)."""
    status, length = probe
    per_request = load.bytes_per_request
    if status not in (200, 304) or load.errors or not length <= per_request < length + 1024:
        raise BenchError(
            f"probe answered {status} with {length} bytes; under load {load.errors} errors, "
            f"{per_request:.0f} bytes per answer"
        )
