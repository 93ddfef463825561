"""/metrics, /healthz and /status over real HTTP: uvicorn on 127.0.0.1, a real poll
against the test feed server, real digests through the test SMTP server.

The metric objects are process-wide, so other tests in the same run have moved
them already: every assertion on a counter compares two scrapes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import html
import json
import re
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from feedsvc import config as config_module
from feedsvc import i18n, metrics
from feedsvc.config import Config
from feedsvc.ingest.poll import Poller
from feedsvc.ingest.pool import parse_pool
from feedsvc.model import utcnow
from feedsvc.newsletter.mail import create_mailer
from feedsvc.publish.regenerate import Publisher
from feedsvc.schedule import http_server
from feedsvc.store import Store
from feedsvc.web import status
from tests._net import free_port
from tests.conftest import PG_URL
from tests.feedserver import FeedServer
from tests.integration import test_deliver
from tests.smtpserver import SmtpServer

TOKEN = "mã-bí-mật-0123456789abcdef"  # not ASCII on purpose: compared as bytes
TEMPLATE = Path(status.__file__).parents[1] / "templates" / "web" / "status.html"

CONFIG = """\
site:
  title: "Báo Hà Tĩnh — Bản tin"
  base_url: "http://127.0.0.1:8080"
storage:
  url: "sqlite:///{db}"
http:
  status_page: {status_page}
fetch:
  allow_private_networks: true
  timeout: 5s
sources:
  - id: tin-da-nang
    url: "{feeds}/feeds/news.xml"
    categories: [xa-hoi]
  - id: nguon-hong
    url: "{feeds}/status/500"
    categories: [xa-hoi]
categories:
  - id: xa-hoi
    title: "Xã hội"
"""

Site = tuple[str, Config, Store]


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    executor = parse_pool()
    yield executor
    executor.shutdown()


def make_config(tmp_path: Path, feeds: FeedServer, *, status_page: bool) -> Config:
    path = tmp_path / "config.yaml"
    text = CONFIG.format(
        db=tmp_path / "feedsvc.db", feeds=feeds.base_url, status_page=str(status_page).lower()
    )
    path.write_text(text, encoding="utf-8")
    return config_module.load(path)


@contextlib.asynccontextmanager
async def serving(config: Config, store: Store) -> AsyncIterator[str]:
    """The app under uvicorn on a free port of 127.0.0.1; yields its base URL."""
    port = free_port()
    config = config.model_copy(update={"http": config.http.model_copy(update={"port": port})})
    server = http_server(config, store)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def newsroom(tmp_path: Path, feeds: FeedServer, *, status_page: bool) -> AsyncIterator[Site]:
    config = make_config(tmp_path, feeds, status_page=status_page)
    store = Store.open(config.database_url)
    store.sources.sync([(s.id, s.url) for s in config.sources], utcnow())
    try:
        async with serving(config, store) as base:
            yield base, config, store
    finally:
        store.close()


@pytest.fixture
async def site(tmp_path: Path, feed_server: FeedServer) -> AsyncIterator[Site]:
    async with newsroom(tmp_path, feed_server, status_page=True) as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def scheduler_off() -> Iterator[None]:
    """Leave the process-wide scheduler flag as a test found it: off."""
    metrics.scheduler_stopped()
    yield
    metrics.scheduler_stopped()


async def poll_all(config: Config, store: Store, pool: ProcessPoolExecutor) -> None:
    """Poll every source once in process, then regenerate what changed, as the service does."""
    async with Poller(config, store, pool=pool) as poller:
        results = await poller.poll()
    await asyncio.to_thread(Publisher(config, store).after_poll, results, poller.clock())


async def scrape(client: aiohttp.ClientSession, base: str) -> tuple[str, dict[str, float]]:
    """The /metrics text, and every sample in it as ``name{label="value"}`` -> value."""
    async with client.get(f"{base}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = await response.text()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return text, values


def moved(before: dict[str, float], after: dict[str, float], name: str) -> float:
    return after.get(name, 0.0) - before.get(name, 0.0)


# --- /metrics ------------------------------------------------------------------------------


async def test_metrics_count_a_real_poll(
    site: Site, client: aiohttp.ClientSession, pool: ProcessPoolExecutor
) -> None:
    base, config, store = site
    _, before = await scrape(client, base)
    assert before['feedsvc_sources{status="new"}'] == 2
    assert "feedsvc_last_poll_timestamp_seconds" not in before

    await poll_all(config, store, pool)
    text, after = await scrape(client, base)

    assert moved(before, after, 'feedsvc_polls_total{status="updated"}') == 1
    assert moved(before, after, 'feedsvc_polls_total{status="error"}') == 1
    assert moved(before, after, 'feedsvc_polls_total{status="not_modified"}') == 0
    assert re.search(r'^feedsvc_polls_total\{status="error"\} [1-9]\d*\.0$', text, re.M)
    assert moved(before, after, "feedsvc_fetch_duration_seconds_count") == 2
    assert moved(before, after, 'feedsvc_entries_stored_total{kind="new"}') == 1
    assert moved(before, after, 'feedsvc_entries_stored_total{kind="updated"}') == 0
    assert moved(before, after, "feedsvc_feeds_regenerated_total") >= 2  # all + xa-hoi
    # Read from the database at scrape time.
    assert after["feedsvc_database_up"] == 1
    assert after['feedsvc_sources{status="ok"}'] == 1
    assert after['feedsvc_sources{status="error"}'] == 1
    assert after['feedsvc_sources{status="new"}'] == 0
    assert after['feedsvc_sources{status="backoff"}'] == 0
    newest = max(s.last_polled_at for s in store.sources.list() if s.last_polled_at)
    assert after["feedsvc_last_poll_timestamp_seconds"] == pytest.approx(newest.timestamp())


async def test_second_failure_shows_as_backoff_and_304_as_not_modified(
    site: Site, client: aiohttp.ClientSession, pool: ProcessPoolExecutor
) -> None:
    base, config, store = site
    await poll_all(config, store, pool)
    _, before = await scrape(client, base)
    await poll_all(config, store, pool)
    _, after = await scrape(client, base)
    assert moved(before, after, 'feedsvc_polls_total{status="not_modified"}') == 1
    assert moved(before, after, 'feedsvc_polls_total{status="error"}') == 1
    assert after['feedsvc_sources{status="backoff"}'] == 1


async def test_metrics_count_deliveries_and_smtp_time(
    tmp_path: Path, client: aiohttp.ClientSession
) -> None:
    async with SmtpServer() as smtp:
        config = test_deliver.make_config(tmp_path, "smtp", smtp.port)
        store = Store.open(config.database_url)
        try:
            test_deliver.store_news(config, store)
            test_deliver.subscribe(store, "an@example.vn")
            test_deliver.subscribe(store, "binh@example.vn", categories=("kinh-te",))
            async with serving(config, store) as base:
                _, before = await scrape(client, base)
                mailer = create_mailer(config)
                deliverer = test_deliver.deliverer(config, store, mailer)
                deliverer.plan("daily", test_deliver.NOW)
                await deliverer.send("daily")
                await mailer.close()
                _, after = await scrape(client, base)
        finally:
            store.close()
    assert moved(before, after, 'feedsvc_deliveries_total{state="sent"}') == 1
    assert moved(before, after, 'feedsvc_deliveries_total{state="empty"}') == 1  # no kinh-te news
    assert moved(before, after, 'feedsvc_deliveries_total{state="failed"}') == 0
    assert moved(before, after, "feedsvc_smtp_send_duration_seconds_count") == 1
    assert moved(before, after, "feedsvc_smtp_send_duration_seconds_sum") > 0


async def test_metrics_without_a_database_still_serve_the_counters(
    tmp_path: Path, feed_server: FeedServer, client: aiohttp.ClientSession
) -> None:
    config = make_config(tmp_path, feed_server, status_page=False)
    unmigrated = Store.open(f"sqlite:///{tmp_path / 'empty.db'}", upgrade=False)
    try:
        async with serving(config, unmigrated) as base:
            _, values = await scrape(client, base)
    finally:
        unmigrated.close()
    assert values["feedsvc_database_up"] == 0
    assert 'feedsvc_polls_total{status="updated"}' in values
    assert not any(name.startswith("feedsvc_sources") for name in values)


async def test_metrics_speak_openmetrics_when_asked(
    site: Site, client: aiohttp.ClientSession
) -> None:
    base, _, _ = site
    accept = "application/openmetrics-text; version=1.0.0; q=0.9, text/plain; q=0.5"
    async with client.get(f"{base}/metrics", headers={"Accept": accept}) as response:
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        assert (await response.text()).endswith("# EOF\n")


# --- /healthz ------------------------------------------------------------------------------


async def test_healthz_reports_database_disk_scheduler_and_last_poll(
    site: Site, client: aiohttp.ClientSession, pool: ProcessPoolExecutor, scheduler_off: None
) -> None:
    base, config, store = site
    async with client.get(f"{base}/healthz") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        assert await response.json() == {
            "status": "ok",
            "database": "ok",
            "disk": "ok",
            "scheduler": "not running",
            "last_poll": None,
        }
    await poll_all(config, store, pool)
    metrics.scheduler_started()
    async with client.get(f"{base}/healthz") as response:
        health = await response.json()
    newest = max(s.last_polled_at for s in store.sources.list() if s.last_polled_at)
    assert health["scheduler"] == "running"
    assert datetime.fromisoformat(health["last_poll"]) == newest
    _, values = await scrape(client, base)
    assert values["feedsvc_scheduler_running"] == 1


@contextlib.asynccontextmanager
async def unanswering(config: Config, url: str) -> AsyncIterator[str]:
    """The app on a store whose database cannot answer (the URL is not migrated or
    does not exist); yields the base URL."""
    broken = Store.open(url, upgrade=False)
    try:
        async with serving(config, broken) as base:
            yield base
    finally:
        broken.close()


async def test_healthz_is_503_and_tells_strangers_nothing_of_the_database(
    tmp_path: Path,
    feed_server: FeedServer,
    client: aiohttp.ClientSession,
    scheduler_off: None,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unauthenticated: ok/failing and a generic reason. The driver's words (host, port,
    database name) go to the log, and to the operator's /status page."""
    monkeypatch.setenv(status.STATUS_TOKEN_ENV, TOKEN)
    config = make_config(tmp_path, feed_server, status_page=True)
    missing = sa.make_url(PG_URL).set(database="feedsvc_nowhere_db").render_as_string(False)
    for url, detail in (
        (f"sqlite:///{tmp_path / 'empty.db'}", "no such table: sources"),
        (missing, '"feedsvc_nowhere_db" does not exist'),
    ):
        caplog.clear()
        async with unanswering(config, url) as base:
            async with client.get(f"{base}/healthz") as response:
                assert response.status == 503
                text = await response.text()
                health = json.loads(text)
            async with client.get(f"{base}/status", params={"token": TOKEN}) as response:
                assert response.status == 503
                page = await response.text()
        assert health == {
            "status": "error",
            "database": "failing",
            "disk": "ok",
            "reasons": {"database": "the database does not answer; see the service log"},
            "scheduler": "not running",
            "last_poll": None,
        }
        for secret in ("sources", "5432", "127.0.0.1", "nowhere", "empty.db", "sqlite"):
            assert secret not in text
        assert detail in html.unescape(page)  # the operator sees why
        assert 'data-check="database" data-ok="no"' in page
        logged = [r for r in caplog.records if r.getMessage() == "health check failing"]
        assert [detail in str(r.__dict__["fields"]["detail"]) for r in logged] == [True]


# --- /status -------------------------------------------------------------------------------


async def test_status_page_is_404_unless_turned_on(
    tmp_path: Path,
    feed_server: FeedServer,
    client: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(status.STATUS_TOKEN_ENV, TOKEN)
    async with (
        newsroom(tmp_path, feed_server, status_page=False) as (base, _, _),
        client.get(f"{base}/status", params={"token": TOKEN}) as response,
    ):
        assert response.status == 404
        assert "Không tìm thấy trang" in await response.text()


async def test_status_page_without_its_variable_says_what_to_set(
    site: Site, client: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(status.STATUS_TOKEN_ENV, raising=False)
    base, _, _ = site
    async with client.get(f"{base}/status", params={"token": ""}) as response:
        assert response.status == 503
        page = await response.text()
    assert "FEEDSVC_STATUS_TOKEN" in page
    assert "chưa được đặt" in page
    assert "tin-da-nang" not in page


@pytest.mark.parametrize(
    ("headers", "params"),
    [
        ({}, {}),
        ({"Authorization": "Bearer wrong"}, {}),
        ({"Authorization": f"Basic {TOKEN}"}, {}),
        ({}, {"token": TOKEN[:-1]}),
        ({}, {"token": TOKEN + "x"}),
    ],
    ids=["none", "wrong-bearer", "not-bearer", "short-query", "long-query"],
)
async def test_status_page_refuses_without_the_right_token(
    site: Site,
    client: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
    headers: dict[str, str],
    params: dict[str, str],
) -> None:
    monkeypatch.setenv(status.STATUS_TOKEN_ENV, TOKEN)
    base, _, _ = site
    async with client.get(f"{base}/status", headers=headers, params=params) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.headers["Cache-Control"] == "no-store"
        page = await response.text()
    assert "tin-da-nang" not in page
    assert 'name="token"' in page  # a form to type it into


async def test_status_token_cannot_be_guessed_without_limit(
    site: Site, client: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a few wrong tokens a client waits, and then even the right one waits: a
    lock-out that let the right token through would still be a guessing oracle."""
    monkeypatch.setenv(status.STATUS_TOKEN_ENV, TOKEN)
    base, _, _ = site
    allowed, _ = status.WRONG_TOKENS
    for attempt in range(allowed):
        async with client.get(f"{base}/status", params={"token": f"guess-{attempt}"}) as response:
            assert response.status == 401
    for token in ("one-more-guess", TOKEN):
        async with client.get(f"{base}/status", params={"token": token}) as response:
            assert response.status == 429
            assert int(response.headers["Retry-After"]) > 0
            assert response.headers["Cache-Control"] == "no-store"
            page = await response.text()
        assert "tin-da-nang" not in page
        assert "Quá nhiều lần nhập sai mã" in page
    async with client.get(f"{base}/status") as response:  # locked out: the form waits too
        assert response.status == 429


async def test_status_page_shows_every_source_and_the_deliveries(
    site: Site,
    client: aiohttp.ClientSession,
    pool: ProcessPoolExecutor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(status.STATUS_TOKEN_ENV, TOKEN)
    base, config, store = site
    await poll_all(config, store, pool)
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    async with client.get(f"{base}/status", headers=bearer) as response:
        assert response.status == 200
        assert response.headers["Content-Language"] == "vi"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        page = await response.text()
    assert "Tình trạng dịch vụ" in page
    assert 'id="source-tin-da-nang" data-status="ok"' in page
    assert 'id="source-nguon-hong" data-status="error"' in page
    assert "HTTP 500" in page  # the last error
    assert f"{config.source('nguon-hong').url}" in page
    assert '<tr data-state="sent"><td>Đã gửi</td><td class="number">0</td></tr>' in page
    async with client.get(
        f"{base}/status", params={"token": TOKEN}, headers={"Accept-Language": "en"}
    ) as response:
        assert response.status == 200
        english = await response.text()
    assert "Service status" in english
    assert "tin-da-nang" in english


async def test_status_page_policy_allows_its_inline_style_and_nothing_else(
    site: Site, client: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(status.STATUS_TOKEN_ENV, TOKEN)
    base, config, _ = site
    async with client.get(f"{base}/status", params={"token": TOKEN}) as response:
        page = await response.text()
        policy = response.headers["Content-Security-Policy"]
        assert response.headers["Referrer-Policy"] == "no-referrer"  # its own, kept
    styles = re.findall(r"<style>(.*?)</style>", page, re.DOTALL)
    assert styles
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(style.encode()).digest()).decode() + "'"
        for style in styles
    ]
    [style_src] = [d.split() for d in policy.split(";") if d.split()[0] == "style-src"]
    assert style_src == ["style-src", "'self'", config.site.base_url, *hashes]


def test_every_status_page_string_has_a_vietnamese_translation() -> None:
    template = TEMPLATE.read_text(encoding="utf-8")
    keys = set(re.findall(r'_\("((?:[^"\\]|\\.)*)"\)', template))
    keys |= set(status.SOURCE_STATUS_LABELS.values()) | set(status.DELIVERY_STATE_LABELS.values())
    assert len(keys) > 20
    assert sorted(keys - set(i18n.VI)) == []
