"""WebSub: changed feeds are announced to the hub, retried when the hub stumbles."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from feedsvc import config as config_module
from feedsvc.publish.regenerate import Publisher
from feedsvc.publish.websub import announce
from feedsvc.store import Store
from tests.conftest import NOW
from tests.integration.corpus_site import CONFIG, load_corpus


class Hub:
    """A hub on 127.0.0.1 that fails the first ``failures`` pings with 503."""

    def __init__(self, failures: int = 0, status: int = 204) -> None:
        self.failures = failures
        self.status = status
        self.pings: list[dict[str, str]] = []
        self.agents: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.pings.append(dict(await request.post()))  # type: ignore[arg-type]
        self.agents.append(request.headers.get("User-Agent", ""))
        if self.failures:
            self.failures -= 1
            return web.Response(status=503)
        return web.Response(status=self.status)


async def serve(hub: Hub) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/hub", hub.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/hub"
    await runner.cleanup()


@pytest.fixture
async def flaky() -> AsyncIterator[tuple[Hub, str]]:
    hub = Hub(failures=2)
    async for url in serve(hub):
        yield hub, url


@pytest.fixture
async def refusing() -> AsyncIterator[tuple[Hub, str]]:
    hub = Hub(status=400)
    async for url in serve(hub):
        yield hub, url


async def test_changed_feeds_are_pinged_with_retries(flaky: tuple[Hub, str]) -> None:
    hub, url = flaky
    feed = "http://127.0.0.1:8080/feeds/xa-hoi.atom"
    failed = await announce(url, [feed], user_agent="feedsvc/test", first_pause=0.01)
    assert failed == []
    assert hub.pings == [{"hub.mode": "publish", "hub.url": feed}] * 3  # 503, 503, then 204
    assert set(hub.agents) == {"feedsvc/test"}


async def test_a_refused_url_is_reported_not_retried(refusing: tuple[Hub, str]) -> None:
    hub, url = refusing
    feed = "http://127.0.0.1:8080/feeds/xa-hoi.rss"
    assert await announce(url, [feed], user_agent="x", first_pause=0.01) == [feed]
    assert len(hub.pings) == 1


async def test_publishing_announces_each_changed_feed_once(
    flaky: tuple[Hub, str], tmp_path: Path
) -> None:
    hub, url = flaky
    hub.failures = 0
    path = tmp_path / "config.yaml"
    path.write_text(
        CONFIG.format(port=8080, db=tmp_path / "feedsvc.db") + f'feeds:\n  websub_hub: "{url}"\n',
        encoding="utf-8",
    )
    config = config_module.load(path)
    store = Store.open(config.database_url)
    try:
        publisher = Publisher(config, store)
        load_corpus(config, store)  # publishes once, without announcing
        changed = publisher.regenerate(["xa-hoi"], NOW)
        assert changed == []  # nothing new: nothing to announce
        store.documents.put("xa-hoi.rss", "application/rss+xml", b"stale", NOW)
        changed = publisher.regenerate(["xa-hoi"], NOW)
        await publisher.announce(changed)
    finally:
        store.close()
    assert changed == ["xa-hoi.rss"]
    assert [ping["hub.url"] for ping in hub.pings] == ["http://127.0.0.1:8080/feeds/xa-hoi.rss"]
