"""What feedsvc writes in data_dir is its own: addresses, link tokens and the signing key
are in there, so no other user of the machine may read them.

The database, its WAL and shared-memory files, the outbox's ``.eml`` files and the
secret key are 0600, the folders feedsvc makes 0700, whatever the umask lets through.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from feedsvc import config as config_module
from feedsvc.config import Config
from feedsvc.model import utcnow
from feedsvc.newsletter.mail import OutboxMailer
from feedsvc.newsletter.tokens import secret_key
from feedsvc.store import Store

MESSAGE = b"From: a@example.vn\r\nTo: b@example.vn\r\nSubject: x\r\n\r\nhello\r\n"


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """The usual umask, 022: what it lets through is the world-readable 0644."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.delenv("FEEDSVC_SECRET_KEY", raising=False)
    path = tmp_path / "config.yaml"
    path.write_text('site:\n  title: "Bản tin"\n  base_url: "http://127.0.0.1:8080"\n')
    return config_module.load(path)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes(root: Path) -> dict[str, int]:
    """Every file and folder under ``root`` (itself included), by relative path."""
    found = {".": mode(root)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = mode(path)
    return found


def test_everything_feedsvc_writes_in_data_dir_is_private(config: Config) -> None:
    store = Store.open(config.database_url)
    try:
        store.subscribers.add(
            "doc.gia@example.vn",
            categories=(),
            schedule="daily",
            locale="vi",
            timezone="Asia/Ho_Chi_Minh",
            confirmed=True,
            now=utcnow(),
        )
        secret_key(config)
        outbox = OutboxMailer(config.outbox_path)
        asyncio.run(outbox.send("a@example.vn", "b@example.vn", MESSAGE, name="digest-1"))
        found = modes(config.data_path)
    finally:
        store.close()

    for name in ("feedsvc.db", "feedsvc.db-wal", "feedsvc.db-shm", "secret.key"):
        assert found.pop(name) == 0o600, name
    assert found.pop("outbox/digest-1.eml") == 0o600
    assert found == {".": 0o700, "outbox": 0o700}


def test_an_older_world_readable_database_is_made_private(config: Config) -> None:
    Store.open(config.database_url).close()
    database = config.data_path / "feedsvc.db"
    for path in (config.data_path, database):
        path.chmod(0o755 if path.is_dir() else 0o644)

    store = Store.open(config.database_url)
    try:
        store.subscribers.list()
        assert mode(database) == 0o600
        assert mode(database.with_name("feedsvc.db-wal")) == 0o600
    finally:
        store.close()
    assert mode(config.data_path) == 0o755  # an existing folder is the operator's choice
