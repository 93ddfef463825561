"""A full disk under data_dir, as a person and a load balancer meet it.

The disk is real: a small tmpfs mounted for the test (the tests run as root in
their VM), holding data_dir with the SQLite database and the outbox, and filled
with a file until the kernel says ENOSPC. SQLite then fails every write that
needs a new page with SQLITE_FULL, as it does on a full disk in production.
"""

from __future__ import annotations

import errno
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from feedsvc import config as config_module
from feedsvc.config import Config
from feedsvc.store import Store
from feedsvc.web import disk
from tests._browser import unavailable
from tests.integration.test_observability import serving

SIZE_MB = 40
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
CONFIG = """\
site:
  title: "Báo Hà Tĩnh — Bản tin"
  base_url: "http://127.0.0.1:8080"
data_dir: "{data_dir}"
categories:
  - id: xa-hoi
    title: "Xã hội"
newsletter:
  from: "Bản tin Hà Tĩnh <bantin@baohatinh.example>"
"""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A SIZE_MB tmpfs of its own, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    options = f"size={SIZE_MB}m,mode=0700"
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], capture_output=True, text=True
    )
    if made.returncode != 0:
        unavailable(f"cannot mount a tmpfs (needs root): {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=True)


def fill(folder: Path) -> Path:
    """Write a file in ``folder`` until its disk is full; returns the file."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as file:
        for size in (1 << 20, 4096, 1):
            with pytest.raises(OSError, match="No space left") as full:  # noqa: PT012
                while True:  # until the disk refuses
                    file.write(b"\0" * size)
            assert full.value.errno == errno.ENOSPC
    return filler


@pytest.fixture
async def site(
    small_disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, Config]]:
    monkeypatch.delenv("FEEDSVC_SECRET_KEY", raising=False)
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(data_dir=small_disk / "var"), encoding="utf-8")
    config = config_module.load(path)
    store = Store.open(config.database_url)
    try:
        async with serving(config, store) as base:
            yield base, config
    finally:
        store.close()


def browser(language: str) -> aiohttp.ClientSession:
    jar = aiohttp.CookieJar(unsafe=True)
    return aiohttp.ClientSession(cookie_jar=jar, headers={"Accept-Language": language})


async def sign_up(
    client: aiohttp.ClientSession, base: str, email: str, headers: dict[str, str] | None = None
) -> aiohttp.ClientResponse:
    """Open the home page and send its form, as a browser does."""
    async with client.get(f"{base}/") as page:
        match = CSRF_FIELD.search(await page.text())
    assert match
    form = [
        ("csrf_token", match.group(1)),
        ("email", email),
        ("category", "xa-hoi"),
        ("schedule", "daily"),
        ("locale", "vi"),
    ]
    response = await client.post(f"{base}/subscribe", data=form, headers=headers)
    await response.read()
    return response


async def health(base: str) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as client, client.get(f"{base}/healthz") as response:
        return response.status, await response.json()


async def test_healthz_fails_while_data_dir_disk_is_full(site: tuple[str, Config]) -> None:
    base, config = site
    code, body = await health(base)
    assert (code, body["status"], body["disk"]) == (200, "ok", "ok")

    filler = fill(config.data_path)
    code, body = await health(base)
    assert code == 503
    assert body["status"] == "error"
    assert body["disk"] == "failing"
    assert body["database"] == "ok"  # it still reads
    assert body["reasons"] == {"disk": "the data folder's disk is full or nearly full"}
    assert str(config.data_path) not in str(body)

    filler.unlink()
    code, body = await health(base)
    assert (code, body["disk"]) == (200, "ok")


async def test_healthz_fails_below_the_free_space_floor(site: tuple[str, Config]) -> None:
    """Not quite full is failing too: a sign-up, a digest or a checkpoint needs room."""
    base, config = site
    filler = fill(config.data_path)
    with filler.open("r+b") as file:
        file.truncate(filler.stat().st_size - disk.FREE_SPACE_FLOOR // 2)
    code, body = await health(base)
    assert (code, body["disk"]) == (503, "failing")


@pytest.mark.parametrize(
    ("language", "words"),
    [("vi", "Tạm thời gián đoạn"), ("en", "Temporarily unavailable")],
)
async def test_sign_up_on_a_full_disk_is_a_friendly_503(
    site: tuple[str, Config], language: str, words: str
) -> None:
    base, config = site
    async with browser(language) as client:
        filler = fill(config.data_path)
        refused = await sign_up(client, base, "doc.gia@example.vn")
        assert refused.status == 503
        assert refused.headers["Retry-After"] == str(disk.RETRY_AFTER)
        assert refused.headers["Content-Language"] == language
        assert refused.headers["Cache-Control"] == "no-store"
        page = await refused.text()
        assert words in page
        assert "Internal Server Error" not in page

        filler.unlink()  # the operator makes room: the same person tries again
        accepted = await sign_up(client, base, "doc.gia@example.vn")
        assert accepted.status == 200
