"""Generated documents (category feeds, OPML), stored ready to serve.

A feed is rendered once per change and served many times, by any process, so
it lives in the database with its validators and a gzip copy. The ETag is a hash
of the body and Last-Modified moves only when the body changes: a feed reader's
conditional GET gets a 304 until there is something new to read.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from feedsvc.store.engine import insert, reading, writing
from feedsvc.store.schema import documents, settings


@dataclass(frozen=True, slots=True)
class Document:
    name: str
    content_type: str
    body: bytes
    body_gzip: bytes
    etag: str
    last_modified: datetime


class DocumentStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.writes = 0  # documents this process has stored: a cache of them is stale if moved

    def put(self, name: str, content_type: str, body: bytes, now: datetime) -> bool:
        """Store ``body`` under ``name``; False (and nothing written) when it is unchanged."""
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        if self.etag(name) == etag:
            return False  # unchanged: skip the gzip and the write lock
        values = {
            "content_type": content_type,
            "body": body,
            "body_gzip": gzip.compress(body, compresslevel=6, mtime=0),
            "etag": etag,
            "last_modified": now.replace(microsecond=0),
        }
        with writing(self._engine) as conn:
            upsert = insert(conn, documents).values(name=name, **values)
            conn.execute(upsert.on_conflict_do_update(index_elements=["name"], set_=values))
        self.writes += 1  # after the commit: a reader that sees the new count sees the row
        return True

    def etag(self, name: str) -> str | None:
        """The stored ETag of ``name`` (one indexed column: how a cache checks its copy)."""
        with reading(self._engine) as conn:
            query = select(documents.c.etag).where(documents.c.name == name)
            return conn.execute(query).scalar_one_or_none()

    def get(self, name: str) -> Document | None:
        with reading(self._engine) as conn:
            row = conn.execute(select(documents).where(documents.c.name == name)).first()
        return Document(**row._mapping) if row else None

    def names(self) -> list[str]:
        with reading(self._engine) as conn:
            return list(conn.execute(select(documents.c.name).order_by(documents.c.name)).scalars())


class SettingStore:
    """Small values the processes share, such as the fingerprint of the categories config."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, key: str) -> str | None:
        with reading(self._engine) as conn:
            query = select(settings.c.value).where(settings.c.key == key)
            return conn.execute(query).scalar_one_or_none()

    def set(self, key: str, value: str) -> None:
        with writing(self._engine) as conn:
            upsert = insert(conn, settings).values(key=key, value=value)
            conn.execute(
                upsert.on_conflict_do_update(index_elements=["key"], set_={"value": value})
            )
